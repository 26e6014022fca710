"""Data loading, shaping, splitting, fingerprinting and merging."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import (
    DataFormatError,
    fingerprint,
    load_dataset,
    merge,
    reference_dataset,
    split,
    to_training_frame,
)
from training.schema import COLUMNS, FEATURES, TARGET

FrameFactory = Callable[..., pd.DataFrame]  # the make_frame fixture (conftest.py)

# --- load_dataset -------------------------------------------------------------------


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_load_csv_bytes_round_trips(make_frame: FrameFactory) -> None:
    frame = make_frame(5)
    loaded = load_dataset(_csv_bytes(frame), "batch.csv")
    pd.testing.assert_frame_equal(loaded, frame, check_exact=False, rtol=1e-12)


def test_load_csv_from_path(tmp_path: Path, make_frame: FrameFactory) -> None:
    path = tmp_path / "batch.csv"
    path.write_bytes(_csv_bytes(make_frame(3)))
    assert load_dataset(path, path.name).shape == (3, len(COLUMNS))


def test_load_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "absent.csv", "absent.csv")


def test_load_parquet_by_extension_and_by_magic(make_frame: FrameFactory) -> None:
    frame = make_frame(4)
    content = _parquet_bytes(frame)
    pd.testing.assert_frame_equal(load_dataset(content, "batch.parquet"), frame)
    # A misnamed Parquet file is still recognised by its PAR1 magic bytes.
    pd.testing.assert_frame_equal(load_dataset(content, "batch.csv"), frame)


def test_load_keeps_raw_types_and_strips_column_names() -> None:
    loaded = load_dataset(b" age , bmi\n1,0.5\n2,oops\n", "batch.csv")
    assert list(loaded.columns) == ["age", "bmi"]
    assert loaded["age"].dtype == np.int64  # not coerced to float here
    # The stray string stays visible to validation as an object column.
    assert loaded["bmi"].dtype == object
    assert loaded["bmi"].tolist() == ["0.5", "oops"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "batch.csv", "file is empty"),
        (b"  \n\n", "batch.csv", "file is empty"),
        (b"age,sex,bmi\n", "batch.csv", "no data rows"),
        (bytes(range(256)) * 4, "batch.csv", "not a CSV file"),
        (b"\xff\xfe\xfaabc,def\n1,2\n", "batch.csv", "not a CSV file"),
        (b'a,b\n1,2\n3,4,5,6\n"unterminated', "batch.csv", "not a CSV file"),
        (b"PAR1 this is not really parquet", "batch.csv", "not a Parquet file"),
        (b"a,b\n1,2\n", "batch.parquet", "not a Parquet file"),
    ],
)
def test_load_rejects_bad_files(content: bytes, name: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message) as caught:
        load_dataset(content, name)
    assert caught.value.name == name
    assert isinstance(caught.value, ValueError)


def test_load_header_only_parquet_has_no_rows(make_frame: FrameFactory) -> None:
    with pytest.raises(DataFormatError, match="no data rows"):
        load_dataset(_parquet_bytes(make_frame(3).iloc[:0]), "empty.parquet")


# --- to_training_frame --------------------------------------------------------------


def test_to_training_frame_orders_casts_and_drops_extras(make_frame: FrameFactory) -> None:
    frame = make_frame(3)
    shuffled = frame[list(reversed(COLUMNS))].assign(extra="x")
    shuffled["age"] = [1, 2, 3]  # ints become float64
    result = to_training_frame(shuffled)
    assert list(result.columns) == list(COLUMNS)
    assert (result.dtypes == np.float64).all()
    assert result["age"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["bmi"]), "missing columns: bmi"),
        (lambda f: f.assign(bmi=["x", "1", "2"]), "non-numeric"),
        (lambda f: f.assign(s3=[1.0, np.nan, 2.0]), "missing values in columns: s3"),
    ],
)
def test_to_training_frame_rejects(make_frame: FrameFactory, mutate, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        to_training_frame(mutate(make_frame(3)))


# --- split --------------------------------------------------------------------------


def _rows(frame: pd.DataFrame) -> set[tuple[float, ...]]:
    return set(frame[list(COLUMNS)].itertuples(index=False, name=None))


def test_split_is_deterministic_and_disjoint(make_frame: FrameFactory) -> None:
    frame = make_frame(200)
    train, holdout = split(frame, 0.2, seed=42)
    again_train, again_holdout = split(frame, 0.2, seed=42)
    pd.testing.assert_frame_equal(train, again_train)
    pd.testing.assert_frame_equal(holdout, again_holdout)
    assert len(train) + len(holdout) == len(frame)
    assert not set(train.index) & set(holdout.index)
    assert not _rows(train) & _rows(holdout)


def test_split_fraction_is_roughly_right() -> None:
    frame = reference_dataset()
    for fraction in (0.1, 0.2, 0.5):
        _, holdout = split(frame, fraction, seed=1)
        assert abs(len(holdout) / len(frame) - fraction) < 0.06


def test_split_depends_on_seed(make_frame: FrameFactory) -> None:
    frame = make_frame(200)
    assert set(split(frame, 0.2, 1)[1].index) != set(split(frame, 0.2, 2)[1].index)


def test_split_is_stable_when_rows_are_appended(make_frame: FrameFactory) -> None:
    old = make_frame(150, seed=1)
    grown = pd.concat([old, make_frame(150, seed=2)], ignore_index=True)
    old_train, old_holdout = split(old, 0.2, seed=42)
    new_train, new_holdout = split(grown, 0.2, seed=42)
    assert _rows(old_holdout) <= _rows(new_holdout)
    assert _rows(old_train) <= _rows(new_train)


def test_split_ignores_row_position(make_frame: FrameFactory) -> None:
    frame = make_frame(100)
    _, holdout = split(frame, 0.3, seed=5)
    _, shuffled_holdout = split(frame.sample(frac=1.0, random_state=3), 0.3, seed=5)
    assert _rows(holdout) == _rows(shuffled_holdout)


def test_split_keeps_identical_rows_together(make_frame: FrameFactory) -> None:
    frame = make_frame(30)
    doubled = pd.concat([frame, frame], ignore_index=True)
    train, holdout = split(doubled, 0.3, seed=0)
    assert not _rows(train) & _rows(holdout)


@pytest.mark.parametrize("fraction", [0.0001, 0.9999])
def test_split_gives_each_part_a_row(make_frame: FrameFactory, fraction: float) -> None:
    # Such fractions put every row of a small frame on one side; the fallback moves one.
    for n in (2, 3, 10):
        train, holdout = split(make_frame(n), fraction, seed=0)
        assert len(train) >= 1 and len(holdout) >= 1
        assert len(train) + len(holdout) == n


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_rejects_bad_fraction(make_frame: FrameFactory, fraction: float) -> None:
    with pytest.raises(ValueError, match="holdout_fraction"):
        split(make_frame(5), fraction, seed=0)


# --- fingerprint --------------------------------------------------------------------


def test_fingerprint_ignores_row_and_column_order(make_frame: FrameFactory) -> None:
    frame = make_frame(20)
    reordered = frame.sample(frac=1.0, random_state=0)[list(reversed(COLUMNS))]
    assert fingerprint(frame) == fingerprint(reordered.reset_index(drop=True))
    assert len(fingerprint(frame)) == 64


def test_fingerprint_changes_with_one_value(make_frame: FrameFactory) -> None:
    frame = make_frame(20)
    changed = frame.copy()
    changed["bmi"] = changed["bmi"].where(changed.index != 7, changed["bmi"] + 1e-9)
    assert fingerprint(frame) != fingerprint(changed)


def test_fingerprint_changes_with_a_duplicated_row(make_frame: FrameFactory) -> None:
    frame = make_frame(20)
    assert fingerprint(frame) != fingerprint(pd.concat([frame, frame.iloc[:1]]))


# --- merge & reference --------------------------------------------------------------


def test_merge_appends_in_schema_order(make_frame: FrameFactory) -> None:
    curated, new = make_frame(4, seed=1), make_frame(3, seed=2)
    merged = merge(curated, new[list(reversed(COLUMNS))])
    assert list(merged.columns) == list(COLUMNS)
    assert list(merged.index) == list(range(7))
    np.testing.assert_array_equal(merged.iloc[4:].to_numpy(), new.to_numpy())


def test_merge_without_curated_returns_the_batch(make_frame: FrameFactory) -> None:
    new = make_frame(3).set_axis([10, 11, 12])
    merged = merge(None, new)
    assert list(merged.index) == [0, 1, 2]
    np.testing.assert_array_equal(merged.to_numpy(), new.to_numpy())


def test_reference_dataset_matches_schema() -> None:
    frame = reference_dataset()
    assert frame.shape == (442, len(COLUMNS))
    assert list(frame.columns) == [*FEATURES, TARGET]
    assert (frame.dtypes == np.float64).all()
    assert not frame.isna().any().any()
