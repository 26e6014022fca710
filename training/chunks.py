"""Reading and writing data files chunk by chunk, so memory does not grow with the file.

``iter_dataset`` yields a CSV or Parquet file as raw frames of at most ``chunk_rows`` rows
(what ``training.data.load_dataset`` returns for a whole file, chunk by chunk);
``write_training_parquet`` writes training frames to one Parquet file and fingerprints them
on the way (the same digest as ``training.data.fingerprint`` of the whole frame);
``read_training_frame`` reads only the schema columns of a Parquet file (CSV: the whole file);
``holdout_of`` keeps a file's holdout rows, batch by batch.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.data import (
    PARQUET_MAGIC,
    PARQUET_SUFFIXES,
    DataFormatError,
    digest_row_hashes,
    holdout_mask,
    load_dataset,
    row_hashes,
    split,
    to_training_frame,
)
from training.schema import COLUMNS

logger = logging.getLogger(__name__)

CHUNK_ROWS = 500_000
_SCAN_BYTES = 8 * 1024 * 1024


def is_parquet(path: Path, name: str) -> bool:
    """Parquet by extension or by its magic bytes, as ``load_dataset`` decides."""
    with path.open("rb") as file:
        head = file.read(len(PARQUET_MAGIC))
    return head == PARQUET_MAGIC or name.lower().endswith(PARQUET_SUFFIXES)


def iter_dataset(path: Path, name: str, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yield the file's rows as raw frames of at most ``chunk_rows`` rows.

    Each chunk is what ``load_dataset`` gives for a file holding those rows: column names
    stripped, text columns as ``object``, values untouched (a CSV's column types are inferred
    per chunk, so a stray string shows up in the chunk that holds it).

    Raises:
        DataFormatError: The file is empty, has no data rows, or is not CSV/Parquet; raised
            when the reader reaches the problem (a malformed line late in a CSV: then).
    """
    if is_parquet(path, name):
        yield from _parquet_chunks(path, name, chunk_rows)
        return
    _scan_text(path, name)
    try:
        reader = pd.read_csv(path, chunksize=chunk_rows, encoding="utf-8-sig")
        with reader:
            first = True
            for chunk in reader:
                if first and chunk.empty:
                    break
                first = False
                yield _raw(chunk)
            if first:
                raise DataFormatError(name, "no data rows (header only)")
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(name, "file is empty") from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(name, f"not a CSV file: not UTF-8 text ({exc.reason})") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(name, f"not a CSV file: {exc}") from exc


def iter_training_frames(
    path: Path, name: str, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The file's rows as float64 training frames (``to_training_frame``), chunk by chunk."""
    for chunk in iter_dataset(path, name, chunk_rows):
        yield to_training_frame(chunk)


def write_training_parquet(frames: Iterable[pd.DataFrame], dest: Path) -> tuple[int, str]:
    """Write training frames, in order, to one Parquet file (one row group per frame).

    Returns:
        The number of rows and the fingerprint of all of them: equal to
        ``training.data.fingerprint`` of the concatenated frame, so the same rows keep the
        same fingerprint however they were chunked.
    """
    schema = pa.schema([(column, pa.float64()) for column in COLUMNS])
    hashes: list[np.ndarray] = []
    rows = 0
    with pq.ParquetWriter(dest, schema) as writer:
        for frame in frames:
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            hashes.append(row_hashes(frame))
            rows += len(frame)
    all_hashes = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    _release_arrow_memory()
    return rows, digest_row_hashes(list(COLUMNS), all_hashes)


def read_training_frame(path: Path, name: str) -> pd.DataFrame:
    """A training frame from a file: Parquet reads only the schema columns, a batch at a
    time, into one float64 array (the frame is that array: ~8 bytes a value at the peak,
    where ``read_table`` + ``to_pandas`` held twice that); CSV is read whole.

    Raises:
        DataFormatError: Unreadable, or a schema column is missing or not numeric.
    """
    if not is_parquet(path, name):
        return to_training_frame(load_dataset(path, name))
    try:
        with _open_parquet(path) as parquet:
            rows = parquet.metadata.num_rows
            values = np.empty((rows, len(COLUMNS)), dtype=np.float64, order="F")
            at = 0
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=list(COLUMNS)):
                for j, column in enumerate(COLUMNS):
                    values[at : at + batch.num_rows, j] = batch.column(column).to_numpy(
                        zero_copy_only=False
                    )
                at += batch.num_rows
    except Exception as exc:  # pyarrow: ArrowInvalid, KeyError for a missing column, ...
        raise DataFormatError(
            name, f"not a Parquet file with numeric schema columns: {exc}"
        ) from exc
    finally:
        _release_arrow_memory()
    if rows == 0:
        raise DataFormatError(name, "no data rows (header only)")
    # Already what to_training_frame makes (schema columns, float64): only its null check,
    # without its copy of the whole set.
    missing: np.ndarray = np.asarray(np.isnan(values).any(axis=0))
    nulls = [column for j, column in enumerate(COLUMNS) if missing[j]]
    if nulls:
        raise DataFormatError("data", f"missing values in columns: {', '.join(nulls)}")
    return pd.DataFrame(values, columns=list(COLUMNS), copy=False)


def holdout_of(
    path: Path, name: str, fraction: float, seed: int, chunk_rows: int = CHUNK_ROWS
) -> pd.DataFrame:
    """The holdout rows of a training file, as ``split`` chooses them, read in chunks.

    Only the holdout (about ``fraction`` of the rows) is kept in memory. A file of one chunk
    is split whole, so the tiny-frame rule of ``split`` (both parts non-empty) holds as in
    the training job; on more rows that rule never applies.
    """
    frames = iter_training_frames(path, name, chunk_rows)
    first = next(frames)  # iter_dataset raises on a file without rows
    second = next(frames, None)
    if second is None:
        return split(first, fraction, seed)[1].reset_index(drop=True)
    parts = [
        frame.loc[holdout_mask(frame, fraction, seed)]
        for frame in itertools.chain((first, second), frames)
    ]
    _release_arrow_memory()
    return pd.concat(parts, ignore_index=True)


def _parquet_chunks(path: Path, name: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        with _open_parquet(path) as parquet:
            any_rows = False
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                if batch.num_rows == 0:
                    continue
                any_rows = True
                yield _raw(batch.to_pandas())
    except DataFormatError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataFormatError(name, f"not a Parquet file: {exc}") from exc
    if not any_rows:
        raise DataFormatError(name, "no data rows (header only)")


def _scan_text(path: Path, name: str) -> None:
    """Refuse empty and binary files before parsing (one pass, a block at a time)."""
    blank = True
    with path.open("rb") as file:
        while block := file.read(_SCAN_BYTES):
            if b"\x00" in block:
                raise DataFormatError(name, "not a CSV file: binary content (NUL bytes)")
            blank = blank and not block.strip()
    if blank:
        raise DataFormatError(name, "file is empty")


def _raw(frame: pd.DataFrame) -> pd.DataFrame:
    """As ``load_dataset`` leaves a frame: text columns as ``object``, names stripped."""
    text_columns = [c for c, dtype in frame.dtypes.items() if isinstance(dtype, pd.StringDtype)]
    frame = frame.astype(dict.fromkeys(text_columns, object))
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame.reset_index(drop=True)


def _open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet reader that holds one batch, not the file: without ``pre_buffer=False``
    pyarrow kept every column chunk read (a 10M-row set: +0.9 GB) until the file closed."""
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=_SCAN_BYTES)


def _release_arrow_memory() -> None:
    """Hand Arrow's freed buffers back to the OS: a long-lived worker otherwise keeps the
    high-water mark of the largest file it read for the rest of its life."""
    pa.default_memory_pool().release_unused()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read a block at a time."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
