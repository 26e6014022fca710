"""A file validated chunk by chunk gets the verdict of the whole file, with the right counts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from expectations.gx_runner import ValidationSession
from expectations.validate import (
    UNREADABLE,
    ExpectationFailure,
    ValidationReport,
    load_suite,
    validate_file,
    validate_frame,
)

ROWS, CHUNK = 2010, 500  # five chunks, the last one of 10 rows (below the 50-row floor)


@pytest.fixture(scope="module")
def big(reference: pd.DataFrame) -> pd.DataFrame:
    """Reference rows drawn with replacement: a valid file of ``ROWS`` rows."""
    return reference.sample(n=ROWS, replace=True, random_state=3).reset_index(drop=True)


def write(frame: pd.DataFrame, folder: Path, name: str = "big.csv") -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def by_key(report: ValidationReport) -> dict[tuple[str, str | None], ExpectationFailure]:
    return {(f.expectation, f.column): f for f in report.failures}


def test_a_good_file_passes_in_chunks(
    big: pd.DataFrame, tmp_path: Path, docs_dir: Path, gx_session: ValidationSession
) -> None:
    report = validate_file(
        write(big, tmp_path),
        file="big.csv",
        docs_dir=docs_dir,
        session=gx_session,
        chunk_rows=CHUNK,
    )

    assert report.success, report.summary()
    assert report.rows == ROWS
    assert report.data_docs is not None and Path(report.data_docs).is_file()


def test_bad_rows_in_later_chunks_are_found_and_counted(
    big: pd.DataFrame, tmp_path: Path, docs_dir: Path, gx_session: ValidationSession
) -> None:
    bad = big.copy()
    bad.loc[1700:1709, "bmi"] = 5.0  # 10 rows in the fourth chunk
    bad.loc[600:604, "s5"] = -3.0  # 5 rows in the second chunk ...
    bad.loc[1800:1806, "s5"] = -3.0  # ... and 7 in the fourth

    report = validate_file(
        write(bad, tmp_path),
        file="bad.csv",
        docs_dir=docs_dir,
        session=gx_session,
        chunk_rows=CHUNK,
    )

    assert not report.success
    failures = by_key(report)
    between = "expect_column_values_to_be_between"
    assert failures[(between, "bmi")].unexpected_count == 10
    assert failures[(between, "s5")].unexpected_count == 12
    assert failures[(between, "s5")].unexpected_percent == pytest.approx(100 * 12 / ROWS, 1e-3)
    # The same counts as GX on the whole frame in one go.
    whole = by_key(validate_frame(bad, file="bad-whole.csv", docs_dir=docs_dir, session=gx_session))
    assert {k: f.unexpected_count for k, f in failures.items() if k[0] == between} == {
        k: f.unexpected_count for k, f in whole.items() if k[0] == between
    }


def test_a_stray_string_in_a_later_chunk_fails_the_type(
    big: pd.DataFrame, tmp_path: Path, docs_dir: Path, gx_session: ValidationSession
) -> None:
    bad = big.astype(object)
    bad.loc[1900, "bp"] = "high"

    report = validate_file(
        write(bad, tmp_path), file="s.csv", docs_dir=docs_dir, session=gx_session, chunk_rows=CHUNK
    )

    assert not report.success
    assert ("expect_column_values_to_be_in_type_list", "bp") in by_key(report)


def test_mean_and_stdev_are_judged_on_the_whole_file(
    big: pd.DataFrame, tmp_path: Path, docs_dir: Path, gx_session: ValidationSession
) -> None:
    """Halves drifting in opposite directions fail chunk by chunk, not as a whole file."""
    drift = big.copy()
    drift.loc[: ROWS // 2 - 1, "age"] += 0.04
    drift.loc[ROWS // 2 :, "age"] -= 0.04
    shifted = big.assign(age=big["age"] + 0.04)

    balanced = validate_file(
        write(drift, tmp_path, "d.csv"),
        file="d.csv",
        docs_dir=docs_dir,
        session=gx_session,
        chunk_rows=CHUNK,
    )
    moved = validate_file(
        write(shifted, tmp_path, "m.csv"),
        file="m.csv",
        docs_dir=docs_dir,
        session=gx_session,
        chunk_rows=CHUNK,
    )

    assert (
        balanced.success
        == validate_frame(drift, file="d", docs_dir=docs_dir, session=gx_session).success
    )
    assert balanced.success, balanced.summary()
    mean = ("expect_column_mean_to_be_between", "age")
    assert list(by_key(moved)) == [mean]
    observed = by_key(moved)[mean].observed
    assert observed == pytest.approx(shifted["age"].mean(), abs=1e-9)
    assert not validate_frame(shifted, file="m", docs_dir=docs_dir, session=gx_session).success


def test_a_malformed_line_late_in_the_file_makes_it_unreadable(
    big: pd.DataFrame, tmp_path: Path, docs_dir: Path, gx_session: ValidationSession
) -> None:
    path = write(big, tmp_path)
    with path.open("a") as file:
        file.write("1,2,3,4,5,6,7,8,9,10,11,12,13\n")

    report = validate_file(
        path, file="late.csv", docs_dir=docs_dir, session=gx_session, chunk_rows=CHUNK
    )

    assert not report.success and report.rows is None
    assert [f.expectation for f in report.failures] == [UNREADABLE]


def test_one_gx_context_serves_every_file_of_a_session(docs_dir: Path, tmp_path: Path) -> None:
    suite, session = load_suite(), ValidationSession()
    assert session.runner_for(suite, docs_dir) is session.runner_for(suite, docs_dir)
    assert session.runner_for(suite, tmp_path) is not session.runner_for(suite, docs_dir)
    # Nothing is kept beyond the session that built it.
    assert ValidationSession().runner_for(suite, docs_dir) is not session.runner_for(
        suite, docs_dir
    )


def test_a_burst_renders_pages_and_rebuilds_the_index_once(
    big: pd.DataFrame, tmp_path: Path
) -> None:
    docs, session = tmp_path / "docs", ValidationSession()
    paths = [write(big.head(200 + i), tmp_path, f"f{i}.csv") for i in range(3)]
    assert session.build_stale_indexes(docs) == 0  # nothing published here yet: nothing to do

    pages = [
        validate_file(p, file=p.name, docs_dir=docs, build_index=False, session=session).data_docs
        for p in paths
    ]

    assert all(page and Path(page).is_file() for page in pages)
    assert not (docs / "index.html").exists()
    assert ValidationSession().build_stale_indexes(docs) == 0  # another session published none
    assert session.build_stale_indexes(docs) == 1
    index = (docs / "index.html").read_text()
    assert all(f"f{i}.csv" in index for i in range(3))  # every run of the burst is listed
    assert session.build_stale_indexes(docs) == 0
