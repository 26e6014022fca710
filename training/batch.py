"""Batch scoring, chunk by chunk: a file of features in, a predictions file out.

Pure (no framework): the local job and the Azure ML job run the same code
(``training.batch_score``). Memory holds one chunk of input and its predictions at a time,
whatever the file's size. The output has one row per input row, in the input's order: ``row``
(the input row's 0-based position) and ``prediction``. It is written under a temporary name
and renamed only when every chunk is in, so a file that fails half way leaves nothing that
looks complete.

Predictions come from ``training.predict.make_predictor``, the function the online service
answers with, on float64 rows in ``FEATURES`` order: a row's prediction is the same bits in
a batch file as in a ``/score`` reply, whatever the chunk or request holds besides it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.artifacts import MODEL_FILE, RUN_FILE, sha256_file
from training.chunks import CHUNK_ROWS, iter_dataset
from training.data import DataFormatError
from training.predict import make_predictor
from training.schema import DTYPE, FEATURES

PREDICTIONS_FILE = "predictions.parquet"
LINEAGE_FILE = "lineage.json"
OUTPUT_COLUMNS = ("row", "prediction")
_SCHEMA = pa.schema([("row", pa.int64()), ("prediction", pa.float64())])


class ModelFileError(ValueError):
    """The model folder is not the registered version (sha256 differs) or is incomplete."""


@dataclass(frozen=True)
class BatchModel:
    """A registered model loaded for batch scoring, with what its lineage records."""

    estimator: Any
    sha256: str
    data_fingerprint: str | None
    estimator_name: str | None


@dataclass(frozen=True)
class Scored:
    """What ``score_file`` wrote: rows, chunks, and the sha256 of the predictions file."""

    rows: int
    chunks: int
    sha256: str


def load_batch_model(folder: Path, sha256: str) -> BatchModel:
    """Load ``model.joblib`` of a model folder after checking it is the registered file.

    Raises:
        ModelFileError: No model file, or its sha256 differs from ``sha256``.
    """
    path = folder / MODEL_FILE
    if not path.is_file():
        raise ModelFileError(f"{folder} holds no {MODEL_FILE}")
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelFileError(f"{path}: sha256 {actual} is not the registered {sha256}")
    import joblib  # deferred: only a job that scores pays for unpickling

    run = _run_record(folder)
    return BatchModel(
        estimator=joblib.load(path),
        sha256=actual,
        data_fingerprint=run.get("data_fingerprint"),
        estimator_name=run.get("estimator"),
    )


def feature_rows(chunk: pd.DataFrame, name: str, first_row: int) -> np.ndarray:
    """The chunk's features as a float64 array in ``FEATURES`` order (other columns ignored).

    Raises:
        DataFormatError: A feature column is missing, holds a non-number or a missing value
            (the message names the column and the file's row).
    """
    missing = [column for column in FEATURES if column not in chunk.columns]
    if missing:
        raise DataFormatError(name, f"missing feature columns: {', '.join(missing)}")
    columns = []
    for column in FEATURES:
        values = pd.to_numeric(chunk[column], errors="coerce").to_numpy(dtype=DTYPE)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = first_row + int(bad[0])
            value = chunk[column].iloc[int(bad[0])]
            what = "a missing value" if pd.isna(value) else f"{value!r} is not a number"
            raise DataFormatError(name, f"column {column!r}, row {row}: {what}")
        columns.append(values)
    return np.column_stack(columns) if columns else np.empty((len(chunk), 0))


def score_file(
    source: Path, name: str, estimator: Any, dest: Path, chunk_rows: int = CHUNK_ROWS
) -> Scored:
    """Score a CSV or Parquet file of features into ``dest`` (``.csv`` or ``.parquet``).

    Args:
        source: The input file.
        name: Its name for messages and reader choice (``.parquet``/``.pq``: Parquet).
        estimator: A fitted regressor.
        dest: The predictions file; written as ``dest`` only once complete.
        chunk_rows: Rows read, scored and written at a time.

    Raises:
        DataFormatError: Empty, unreadable, or a feature column missing or not numeric;
            ``dest`` is then not created (and a previous one is left as it was).
    """
    predict, _ = make_predictor(estimator)
    rows = chunks = 0
    with _committing(dest) as tmp, _writer(tmp, csv_format=dest.suffix == ".csv") as write:
        for chunk in iter_dataset(source, name, chunk_rows):
            predictions = predict(feature_rows(chunk, name, rows))
            write(np.arange(rows, rows + len(chunk), dtype=np.int64), predictions)
            rows += len(chunk)
            chunks += 1
    pa.default_memory_pool().release_unused()
    return Scored(rows=rows, chunks=chunks, sha256=sha256_file(dest))


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions file as a frame (``row``, ``prediction``): for tests and small files."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"row": "int64", "prediction": "float64"})
    return pq.read_table(path).to_pandas()


def write_lineage(folder: Path, lineage: dict[str, Any]) -> Path:
    """Write ``lineage.json`` atomically (it is the output's commit record: written last)."""
    path = folder / LINEAGE_FILE
    tmp = folder / f".{LINEAGE_FILE}.tmp"
    tmp.write_text(json.dumps(lineage, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


class _Write(Protocol):
    def __call__(self, rows: np.ndarray, predictions: np.ndarray) -> None: ...


@contextmanager
def _committing(dest: Path) -> Iterator[Path]:
    """A temporary name beside ``dest``, renamed to ``dest`` on success, removed on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)


@contextmanager
def _writer(path: Path, *, csv_format: bool) -> Iterator[_Write]:
    if csv_format:
        with path.open("w", newline="", encoding="utf-8") as file:
            out = csv.writer(file)
            out.writerow(OUTPUT_COLUMNS)

            def write_csv(rows: np.ndarray, predictions: np.ndarray) -> None:
                # repr of a float64 round-trips exactly: the CSV holds the same numbers.
                out.writerows(zip(rows.tolist(), map(repr, predictions.tolist()), strict=True))

            yield write_csv
        return
    with pq.ParquetWriter(path, _SCHEMA) as parquet:

        def write_parquet(rows: np.ndarray, predictions: np.ndarray) -> None:
            parquet.write_table(pa.table([rows, predictions], schema=_SCHEMA))

        yield write_parquet


def _run_record(folder: Path) -> dict[str, Any]:
    try:
        run: dict[str, Any] = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return run
