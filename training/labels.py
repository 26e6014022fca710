"""Ground truth that arrives after scoring, joined to the collected rows it belongs to.

A label file (``labels/<name>`` in the collected container, ``training/collected.py``) is a
CSV with the header ``request_id,row,target``. Joined on ``(request_id, row)`` to collected
rows, each labelled row is a complete training row (the features the service saw, the
target that came later): ``training_csv`` writes those in ``training.schema`` column order,
as a landing file that goes through the same Great Expectations gate as any other.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from training.collected import LABEL_COLUMNS
from training.drift import PREDICTION
from training.schema import COLUMNS, TARGET

KEYS = ["request_id", "row"]


class LabelFormatError(ValueError):
    """A label file is not ``request_id,row,target`` CSV; the message says why."""


@dataclass(frozen=True)
class Joined:
    """A label file joined to collected rows: the labelled rows (``COLUMNS`` + prediction)
    and how many of its labels found no collected row."""

    rows: pd.DataFrame
    unmatched: int


def parse_labels(content: bytes, name: str) -> pd.DataFrame:
    """A label file's rows, typed (duplicate keys: the last label wins).

    Raises:
        LabelFormatError: Wrong header, unreadable CSV or values of the wrong type.
    """
    try:
        frame = pd.read_csv(io.BytesIO(content), dtype={"request_id": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise LabelFormatError(f"{name}: not a CSV file: {exc}") from None
    if tuple(frame.columns) != LABEL_COLUMNS:
        raise LabelFormatError(
            f"{name}: header is {list(frame.columns)}, expected {list(LABEL_COLUMNS)}"
        )
    try:
        frame["row"] = frame["row"].astype("int64")
        frame[TARGET] = frame[TARGET].astype("float64")
    except (ValueError, TypeError) as exc:
        raise LabelFormatError(f"{name}: {exc}") from None
    return frame.drop_duplicates(KEYS, keep="last").reset_index(drop=True)


def join_labels(collected: pd.DataFrame, labels: pd.DataFrame) -> Joined:
    """Labels joined to collected rows (``training.drift.rows_frame``) on (request_id, row).

    A row collected twice (a writer retried a flush) counts once.
    """
    unique = collected.drop_duplicates(KEYS, keep="last")
    merged = labels.merge(unique, on=KEYS, how="inner", validate="one_to_one")
    rows = merged[[*COLUMNS, PREDICTION]].reset_index(drop=True)
    return Joined(rows=rows, unmatched=len(labels) - len(rows))


def training_csv(joined: pd.DataFrame) -> bytes:
    """Labelled rows as a landing file: CSV of ``training.schema.COLUMNS``, in that order."""
    return joined[list(COLUMNS)].to_csv(index=False).encode()
