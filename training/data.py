"""Reading, shaping, splitting and fingerprinting the diabetes data.

``load_dataset`` returns the frame exactly as the file holds it (only column names are
stripped), because the data-validation suite must see raw types: a stray string in a
numeric column has to reach it as an ``object`` column, not be coerced away here.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from training.schema import COLUMNS, DTYPE

logger = logging.getLogger(__name__)

PARQUET_MAGIC = b"PAR1"
PARQUET_SUFFIXES = (".parquet", ".pq")
# Buckets of the row hash: a row goes to the holdout when its bucket < fraction * BUCKETS.
_BUCKETS = 10_000
# splitmix64 constants: a cheap, well-mixed finaliser so the seed changes every bucket.
_MIX_SEED = 0x9E3779B97F4A7C15
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


class DataFormatError(ValueError):
    """The input cannot be read as a data set (empty, no rows, not CSV/Parquet, bad values)."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")


def load_dataset(source: bytes | Path, name: str) -> pd.DataFrame:
    """Read a CSV or Parquet file into a raw DataFrame.

    Args:
        source: The file content, or a path to read it from.
        name: The file name; its extension (``.parquet``/``.pq``) selects Parquet, and so
            does content starting with the Parquet magic bytes ``PAR1``. Anything else is
            read as UTF-8 CSV.

    Returns:
        The frame with whitespace stripped from column names and nothing else changed.

    Raises:
        DataFormatError: The file is empty, has no data rows, or is not CSV/Parquet.
        FileNotFoundError: ``source`` is a path that does not exist.
    """
    content = source.read_bytes() if isinstance(source, Path) else source
    if not content.strip():
        raise DataFormatError(name, "file is empty")
    if content.startswith(PARQUET_MAGIC) or name.lower().endswith(PARQUET_SUFFIXES):
        frame = _read_parquet(content, name)
    else:
        frame = _read_csv(content, name)
    if frame.empty:
        raise DataFormatError(name, "no data rows (header only)")
    # pandas >= 3 reads text as the ``str`` dtype; ``object`` keeps what downstream
    # validation sees identical across pandas versions. Values are untouched. Done before
    # stripping names, while the reader still guarantees they are unique.
    text_columns = [c for c, dtype in frame.dtypes.items() if isinstance(dtype, pd.StringDtype)]
    frame = frame.astype(dict.fromkeys(text_columns, object))
    frame.columns = [str(column).strip() for column in frame.columns]
    logger.info("loaded %s: %d rows x %d columns", name, len(frame), frame.shape[1])
    return frame


def _read_parquet(content: bytes, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(content))
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataFormatError(name, f"not a Parquet file: {exc}") from exc


def _read_csv(content: bytes, name: str) -> pd.DataFrame:
    # A NUL byte never occurs in text; checking first gives a clear message for binaries
    # that happen to decode or tokenize.
    if b"\x00" in content:
        raise DataFormatError(name, "not a CSV file: binary content (NUL bytes)")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(name, f"not a CSV file: not UTF-8 text ({exc.reason})") from exc
    try:
        return pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(name, "file is empty") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataFormatError(name, f"not a CSV file: {exc}") from exc


def to_training_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Select the schema columns in schema order and cast them to float64.

    Meant for frames that passed validation; the checks here only turn a mistake into a
    clear error instead of a NumPy traceback.

    Args:
        df: A frame holding at least the columns of ``training.schema.COLUMNS``.

    Returns:
        A new float64 frame with exactly ``COLUMNS`` and a fresh 0..n-1 index.

    Raises:
        DataFormatError: A column is missing, not numeric, or has missing values.
    """
    missing = [column for column in COLUMNS if column not in df.columns]
    if missing:
        raise DataFormatError("data", f"missing columns: {', '.join(missing)}")
    try:
        frame = df[list(COLUMNS)].astype(np.dtype(DTYPE))
    except (TypeError, ValueError) as exc:
        raise DataFormatError("data", f"non-numeric values: {exc}") from exc
    nulls = [column for column in COLUMNS if frame[column].isna().any()]
    if nulls:
        raise DataFormatError("data", f"missing values in columns: {', '.join(nulls)}")
    return frame.reset_index(drop=True)


def _row_buckets(df: pd.DataFrame, seed: int) -> np.ndarray:
    """Bucket in [0, _BUCKETS) per row, a function of the row's values and the seed only."""
    hashes = pd.util.hash_pandas_object(df[list(COLUMNS)].astype(np.dtype(DTYPE)), index=False)
    salt = np.uint64((seed * _MIX_SEED) % 2**64)  # Python ints: any seed, no overflow
    mixed = hashes.to_numpy(dtype=np.uint64) ^ salt
    with np.errstate(over="ignore"):  # uint64 wrap-around is the intent
        mixed = (mixed ^ (mixed >> np.uint64(30))) * _MIX_1
        mixed = (mixed ^ (mixed >> np.uint64(27))) * _MIX_2
    mixed ^= mixed >> np.uint64(31)
    return (mixed % np.uint64(_BUCKETS)).astype(np.int64)


def _threshold(holdout_fraction: float) -> int:
    return round(holdout_fraction * _BUCKETS)


def holdout_mask(df: pd.DataFrame, holdout_fraction: float, seed: int) -> np.ndarray:
    """Which rows ``split`` puts in the holdout, row by row (without its tiny-frame rule):
    for a file read in chunks, the masks of the chunks are the mask of the whole file."""
    return np.asarray(_row_buckets(df, seed) < _threshold(holdout_fraction))


def split(
    df: pd.DataFrame, holdout_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into train and holdout by a seeded hash of each row's values.

    The assignment depends only on a row's values and the seed, not on its position, so
    appending rows never moves an existing row between train and holdout, and identical
    rows always land on the same side.

    Args:
        df: A frame with the schema columns (other columns are carried along).
        holdout_fraction: Expected share of rows in the holdout, in (0, 1).
        seed: Salt of the hash; another seed gives another split.

    Returns:
        ``(train, holdout)``, both keeping the original index. For two or more rows each
        part has at least one row.

    Raises:
        ValueError: ``holdout_fraction`` is not strictly between 0 and 1.
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    buckets = _row_buckets(df, seed)
    in_holdout = buckets < _threshold(holdout_fraction)
    if len(df) >= 2 and (in_holdout.all() or not in_holdout.any()):
        # Tiny frames can hash to one side; move the row nearest the threshold so both
        # parts are usable. Choosing by bucket keeps this deterministic.
        if in_holdout.all():
            in_holdout[int(np.argmax(buckets))] = False
        else:
            in_holdout[int(np.argmin(buckets))] = True
    return df.loc[~in_holdout], df.loc[in_holdout]


def fingerprint(df: pd.DataFrame) -> str:
    """Return a sha256 hex digest of the data, ignoring row order and column order.

    Schema columns come first in schema order, other columns after, sorted by name. Each
    row is hashed, and the sorted row hashes plus the column names are digested.

    Args:
        df: Any frame; for the same values in any row or column order the result is equal.

    Returns:
        A 64-character hex string.
    """
    extra = sorted(str(column) for column in df.columns if column not in COLUMNS)
    ordered = [column for column in COLUMNS if column in df.columns] + extra
    return digest_row_hashes(ordered, row_hashes(df, ordered))


def row_hashes(df: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray:
    """One uint64 per row, a function of that row's values only (``fingerprint``'s input):
    hashing a file chunk by chunk gives the same hashes as hashing it whole."""
    selected = df[columns if columns is not None else list(COLUMNS)]
    return pd.util.hash_pandas_object(selected, index=False).to_numpy(dtype=np.uint64)


def digest_row_hashes(columns: list[str], hashes: np.ndarray) -> str:
    """The fingerprint of rows given their hashes (any order) and the column names."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(columns).encode("utf-8"))
    digest.update(np.sort(hashes).astype("<u8").tobytes())
    return digest.hexdigest()


def merge(curated: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Append validated new rows to the curated data set.

    Args:
        curated: The current curated frame, or ``None`` on the first batch.
        new: The validated new batch.

    Returns:
        One float64 frame with ``COLUMNS`` in schema order and a 0..n-1 index.
    """
    parts = [to_training_frame(frame) for frame in (curated, new) if frame is not None]
    return pd.concat(parts, ignore_index=True)


def reference_dataset() -> pd.DataFrame:
    """Return scikit-learn's diabetes data (442 rows) as a float64 frame of ``COLUMNS``.

    The data ships inside scikit-learn, so no network is needed. Imported here, not at the
    top: ``sklearn.datasets`` (scipy...) was most of the retraining flow's start-up, which
    only needs this module's CSV and chunk helpers.
    """
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    return frame[list(COLUMNS)].astype(np.dtype(DTYPE)).reset_index(drop=True)
