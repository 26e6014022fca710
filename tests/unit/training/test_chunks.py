"""Reading files chunk by chunk gives what reading them whole gives, row for row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training import chunks
from training import data as tdata


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return tdata.reference_dataset()


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_csv_chunks_are_the_file_in_order(tmp_path: Path, reference: pd.DataFrame) -> None:
    path = write_csv(tmp_path / "a.csv", reference)

    parts = list(chunks.iter_dataset(path, "a.csv", chunk_rows=100))

    assert [len(p) for p in parts] == [100, 100, 100, 100, 42]
    whole = tdata.load_dataset(path, "a.csv")
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_parquet_chunks_are_the_file_in_order(tmp_path: Path, reference: pd.DataFrame) -> None:
    path = tmp_path / "a.parquet"
    reference.to_parquet(path, index=False)

    parts = list(chunks.iter_dataset(path, "a.parquet", chunk_rows=200))

    assert [len(p) for p in parts] == [200, 200, 42]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), reference)


def test_a_stray_string_shows_up_in_the_chunk_that_holds_it(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    frame = reference.astype(object)
    frame.loc[350, "bmi"] = "high"
    path = write_csv(tmp_path / "b.csv", frame)

    parts = list(chunks.iter_dataset(path, "b.csv", chunk_rows=100))

    assert [p["bmi"].dtype.kind for p in parts] == ["f", "f", "f", "O", "f"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"  \n\n", "file is empty"),
        (b"age,sex\n", "no data rows"),
        (b"age,sex\n1,2\x00\n", "binary content"),
        (b"age,sex\n1,\xff\n", "not UTF-8"),
    ],
)
def test_unreadable_files_raise_a_data_format_error(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(tdata.DataFormatError, match=problem):
        list(chunks.iter_dataset(path, "bad.csv", chunk_rows=10))


def test_a_malformed_line_late_in_the_file_is_found(tmp_path: Path) -> None:
    lines = ["a,b"] + [f"{i},{i}" for i in range(50)] + ["1,2,3,4"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    parts = chunks.iter_dataset(path, "late.csv", chunk_rows=10)
    with pytest.raises(tdata.DataFormatError, match="not a CSV file"):
        list(parts)


def test_parquet_written_in_chunks_keeps_the_whole_frame_fingerprint(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    path = write_csv(tmp_path / "a.csv", reference)
    out = tmp_path / "set.parquet"

    rows, fingerprint = chunks.write_training_parquet(
        chunks.iter_training_frames(path, "a.csv", chunk_rows=64), out
    )

    assert rows == len(reference)
    assert fingerprint == tdata.fingerprint(tdata.to_training_frame(reference))
    pd.testing.assert_frame_equal(chunks.read_training_frame(out, "set.parquet"), reference)


def test_training_reads_only_the_schema_columns_of_parquet(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    path = tmp_path / "wide.parquet"
    reference.assign(note="extra column").to_parquet(path, index=False)

    frame = chunks.read_training_frame(path, "wide.parquet")

    pd.testing.assert_frame_equal(frame, reference)


def test_a_csv_curated_set_is_still_read(tmp_path: Path, reference: pd.DataFrame) -> None:
    path = write_csv(tmp_path / "data-old.csv", reference)
    frame = chunks.read_training_frame(path, "data-old.csv")
    assert tdata.fingerprint(frame) == tdata.fingerprint(reference)


@pytest.mark.parametrize("chunk_rows", [50, 1000])
def test_holdout_in_chunks_is_the_holdout_of_the_whole(
    tmp_path: Path, reference: pd.DataFrame, chunk_rows: int
) -> None:
    path = tmp_path / "set.parquet"
    reference.to_parquet(path, index=False)

    holdout = chunks.holdout_of(path, "set.parquet", 0.2, seed=7, chunk_rows=chunk_rows)

    _, expected = tdata.split(reference, 0.2, seed=7)
    pd.testing.assert_frame_equal(holdout, expected.reset_index(drop=True))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"bmi": None}, "missing values in columns: bmi"),
        ({"bp": "high"}, "numeric schema columns"),
    ],
)
def test_training_refuses_parquet_with_gaps_or_text(
    tmp_path: Path, reference: pd.DataFrame, change: dict[str, object], problem: str
) -> None:
    frame = reference.copy()
    for column, value in change.items():
        values = frame[column].astype(object if value is None else str).tolist()
        values[5] = value
        frame[column] = values
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(tdata.DataFormatError, match=problem):
        chunks.read_training_frame(path, "bad.parquet")
