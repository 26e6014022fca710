"""Validating files and frames: verdicts on the corpus, reports, Data Docs, robustness."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from expectations.gx_runner import SuiteRunner, prune_results, run_name
from expectations.validate import (
    SUITE_ERROR,
    ExpectationFailure,
    ValidationReport,
    ValidationSession,
    validate_bytes,
    validate_file,
    validate_frame,
)
from training.data import load_dataset

CORPUS_DIR = Path(__file__).resolve().parents[2] / "data"
CORPUS: dict[str, dict[str, Any]] = json.loads((CORPUS_DIR / "corpus.json").read_text())
Reports = Callable[[str], tuple[ValidationReport, pd.DataFrame | None]]
GOOD = [name for name, spec in CORPUS.items() if spec["verdict"] == "pass"]
BAD = [name for name, spec in CORPUS.items() if spec["verdict"] == "fail"]
UNREADABLE = [
    name for name in BAD if CORPUS[name]["must_fail"][0]["expectation"] == "file_is_readable_table"
]


def test_corpus_covers_every_case_and_stays_small() -> None:
    assert len(GOOD) >= 3 and any(name.endswith(".parquet") for name in GOOD)
    stems = {Path(name).stem for name in BAD}
    assert stems >= {
        "wrong_columns", "missing_column", "wrong_types", "nan_values", "out_of_range",
        "empty", "header_only", "not_a_csv", "distribution_shift", "too_few_rows",
    }  # fmt: skip
    for name in CORPUS:
        assert (CORPUS_DIR / name).stat().st_size < 50_000, name


@pytest.mark.parametrize("name", GOOD)
def test_good_files_pass(validated: Reports, name: str) -> None:
    report, frame = validated(name)
    assert report.success, report.summary()
    assert report.failures == [] and report.error is None
    assert report.rows == CORPUS[name]["rows"] and frame is not None
    assert report.evaluated == 57
    assert "all 57 expectations of training_data passed" in report.summary()


@pytest.mark.parametrize("name", BAD)
def test_bad_files_fail_on_the_expected_expectation(validated: Reports, name: str) -> None:
    spec = CORPUS[name]
    report, _ = validated(name)
    assert not report.success
    failed = report.failed()
    for expected in spec["must_fail"]:
        assert (expected["expectation"], expected["column"]) in failed, report.summary()
    failing_columns = {failure.column for failure in report.failures if failure.column}
    assert failing_columns == set(spec["failing_columns"]), report.summary()


@pytest.mark.parametrize("name", BAD)
def test_summary_names_the_failures(validated: Reports, name: str) -> None:
    report, _ = validated(name)
    summary = report.summary()
    assert "\n" not in summary and name in summary
    for expected in CORPUS[name]["must_fail"]:
        if expected["expectation"] == "file_is_readable_table":
            assert "unreadable" in summary and str(report.error) in summary
        else:
            assert f"{expected['column'] or '(table)'}: {expected['expectation']}" in summary


@pytest.mark.parametrize("name", UNREADABLE)
def test_unreadable_files_give_a_clear_report_without_a_gx_run(
    validated: Reports, name: str
) -> None:
    report, frame = validated(name)
    assert frame is None and report.rows is None and report.evaluated == 0
    assert report.error and report.data_docs is None
    [failure] = report.failures
    assert failure.expectation == "file_is_readable_table" and failure.details == report.error


@pytest.mark.parametrize("name", [*GOOD, *BAD])
def test_reports_are_json_and_markdown(validated: Reports, name: str) -> None:
    report, _ = validated(name)
    data = json.loads(json.dumps(report.to_dict()))
    assert ValidationReport.from_dict(data).to_dict() == data
    markdown = report.to_markdown()
    assert ("passed" if report.success else "FAILED") in markdown
    for failure in report.failures:
        assert f"| {failure.expectation} |" in markdown


@pytest.mark.parametrize("name", [n for n in [*GOOD, *BAD] if n not in UNREADABLE])
def test_data_docs_page_exists_for_passing_and_failing_runs(
    validated: Reports, docs_dir: Path, name: str
) -> None:
    report, _ = validated(name)
    assert report.data_docs is not None
    page = Path(report.data_docs)
    assert page.is_file() and page.suffix == ".html"
    assert page.is_relative_to(docs_dir) and run_name(name) in page.parts
    index = (docs_dir / "index.html").read_text(encoding="utf-8")
    assert page.relative_to(docs_dir).as_posix() in index


def test_failure_details_are_actionable(validated: Reports) -> None:
    types = _failure(validated, "bad/wrong_types.csv", "expect_column_values_to_be_in_type_list")
    assert "3 values are not numbers" in types.details and "obese" in types.details
    missing = _failure(validated, "bad/missing_column.csv", "expect_column_mean_to_be_between")
    assert missing.details == "column 's6' is not in the file"
    nulls = _failure(validated, "bad/nan_values.csv", "expect_column_values_to_not_be_null")
    assert nulls.column == "bp" and nulls.unexpected_count == 4
    shift = _failure(validated, "bad/distribution_shift.csv", "expect_column_mean_to_be_between")
    assert isinstance(shift.observed, float) and "expected between" in shift.details


def _failure(reports: Reports, name: str, expectation: str) -> ExpectationFailure:
    return next(f for f in reports(name)[0].failures if f.expectation == expectation)


WEIRD_FRAMES = {
    "all-nan": lambda ref: ref.assign(s1=np.nan),
    "strings": lambda ref: ref.astype(str),
    "mixed-objects": lambda ref: ref.assign(bp=[[1]] * len(ref)),
    "booleans": lambda ref: ref.assign(sex=True),
    "infinities": lambda ref: ref.assign(s2=np.inf),
    "no-columns": lambda ref: pd.DataFrame(),
    "no-rows": lambda ref: ref.head(0),
    "integer-names": lambda ref: pd.DataFrame(ref.to_numpy()),
    "duplicate-names": lambda ref: ref.set_axis(["age", "age", *ref.columns[2:]], axis=1),
}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # std of inf
@pytest.mark.parametrize("make", WEIRD_FRAMES.values(), ids=WEIRD_FRAMES.keys())
def test_weird_frames_are_failures_not_exceptions(
    reference: pd.DataFrame, tmp_path: Path, make: Any
) -> None:
    report = validate_frame(make(reference), file="weird.csv", docs_dir=tmp_path)
    assert not report.success and report.failures and report.error is None
    json.dumps(report.to_dict())


def test_duplicate_column_names_are_reported(reference: pd.DataFrame, tmp_path: Path) -> None:
    frame = pd.concat([reference, reference[["bmi"]]], axis=1)
    report = validate_frame(frame, file="dupes.csv", docs_dir=tmp_path)
    assert ("column_names_are_unique", "bmi") in report.failed()


def test_index_keeps_earlier_runs_and_prunes_beyond_keep_runs(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    pages = [
        validate_frame(reference.head(n), file=f"run{n}.csv", docs_dir=tmp_path, keep_runs=2)
        for n in (60, 40, 70)
    ]
    assert [page.success for page in pages] == [True, False, True]
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "run40.csv" in index and "run70.csv" in index and "run60.csv" not in index
    assert not Path(str(pages[0].data_docs)).exists()
    assert all(Path(str(page.data_docs)).exists() for page in pages[1:])


def test_prune_results_keeps_the_newest(tmp_path: Path) -> None:
    for stamp in ("20240103T000000.000000Z", "20240101T000000.000000Z", "20240102T000000.000000Z"):
        path = tmp_path / "suite" / f"run{stamp[7]}" / stamp / "batch.json"
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    assert prune_results(tmp_path, keep=1) == 2
    assert [p.parent.name for p in tmp_path.rglob("*.json")] == ["20240103T000000.000000Z"]
    assert not (tmp_path / "suite" / "run1").exists()


@pytest.mark.parametrize(
    ("file", "expected"),
    [("batch.csv", "batch.csv"), ("in/2024/b c.csv", "in_2024_b_c.csv"), ("../..", "_..")],
)
def test_run_names_are_safe_directory_names(file: str, expected: str) -> None:
    assert run_name(file) == expected and "/" not in run_name(file)


def test_parse_reads_raw_values_and_strips_names() -> None:
    frame = load_dataset(b"\xef\xbb\xbf age , bmi\n1,x\n2,0.5\n", "f.csv")
    assert list(frame.columns) == ["age", "bmi"]
    assert frame["age"].dtype == "int64" and frame["bmi"].dtype == object


def test_parse_detects_parquet_by_content(reference: pd.DataFrame) -> None:
    data = (CORPUS_DIR / "good/diabetes_batch_c.parquet").read_bytes()
    assert len(load_dataset(data, "no_extension")) == 100


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"age,bmi\n", "header only"),
        (b"\xff\xfe\x00a", "binary"),
        (b"\xff\xfeabc", "UTF-8"),
        (b"a,b\n1,2\n3,4,5,6,7\n", "not a CSV"),
    ],
)
def test_parse_rejects_unreadable_content(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_dataset(data, "f.csv")


def test_validate_bytes_on_a_corrupt_parquet_file(docs_dir: Path) -> None:
    report, frame = validate_bytes(b"PAR1 not really", file="x.parquet", docs_dir=docs_dir)
    assert frame is None and "not a Parquet file" in str(report.error)


def test_wrong_columns_lead_the_summary(validated: Reports) -> None:
    """Six failures follow from one cause: the one line names it first (issue 8)."""
    summary = validated("bad/wrong_columns.csv")[0].summary()
    assert summary.startswith(
        "bad/wrong_columns.csv: wrong columns (unexpected: ['body_mass_index']; missing: ['bmi']); "
        "6 of 57 expectations of training_data failed: (table): expect_table_columns_to_match_set, "
    ), summary
    assert "\n" not in summary


class _BrokenSession(ValidationSession):
    """A session whose GX runner fails on every frame, as GX's internals can."""

    class Runner:
        def validate(self, frame: pd.DataFrame) -> Any:
            raise RuntimeError("metric exploded")

    def runner_for(self, suite: dict[str, Any], docs_dir: Path) -> SuiteRunner:
        return self.Runner()  # type: ignore[return-value]


def test_a_suite_gx_cannot_evaluate_fails_the_report_instead_of_the_run(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    frame = reference.head(60)
    path = tmp_path / "f.csv"
    frame.to_csv(path, index=False)
    session = _BrokenSession()
    for report, rows in (
        (validate_frame(frame, file="f.csv", docs_dir=tmp_path, session=session), 60),
        # In chunks: the rows judged before the failure.
        (validate_file(path, file="f.csv", docs_dir=tmp_path, session=session), 0),
    ):
        assert (report.success, report.rows) == (False, rows)
        assert [f.expectation for f in report.failures] == [SUITE_ERROR]
        assert report.error == "validation could not run: metric exploded"
