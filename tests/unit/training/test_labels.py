"""Labels joined to collected rows on (request_id, row) become training rows."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.utils.collected import traffic
from training import drift, labels
from training.collected import CollectedRow
from training.schema import COLUMNS, FEATURES


def collected(n: int) -> pd.DataFrame:
    frame = traffic(n, seed=4)
    rows = [
        CollectedRow(
            request_id=f"r{i // 2}",
            row=i % 2,
            time="2026-12-02T10:00:00+00:00",
            model="m",
            version="1",
            data_fingerprint="x",
            features={name: float(frame[name].iloc[i]) for name in FEATURES},
            prediction=100.0 + i,
        )
        for i in range(n)
    ]
    return drift.rows_frame(rows)


def test_labels_join_on_request_and_row_into_schema_columns() -> None:
    rows = collected(6)
    content = b"request_id,row,target\nr0,1,10\nr2,0,20\nmissing,0,30\nr2,0,21\n"
    joined = labels.join_labels(rows, labels.parse_labels(content, "l.csv"))
    assert joined.unmatched == 1
    assert list(joined.rows[drift.PREDICTION]) == [101.0, 104.0]
    assert list(joined.rows["target"]) == [10.0, 21.0]  # the later label of r2/0 wins
    assert joined.rows["bmi"].iloc[0] == rows["bmi"].iloc[1]
    csv = pd.read_csv(io.BytesIO(labels.training_csv(joined.rows)))
    assert tuple(csv.columns) == COLUMNS and len(csv) == 2


def test_a_row_collected_twice_is_labelled_once() -> None:
    rows = collected(2)
    twice = pd.concat([rows, rows], ignore_index=True)
    joined = labels.join_labels(twice, labels.parse_labels(b"request_id,row,target\nr0,0,5\n", "l"))
    assert len(joined.rows) == 1


@pytest.mark.parametrize(
    "content",
    [b"id,row,target\nr0,0,1\n", b"request_id,row,target\nr0,zero,1\n", b"\x00\x01"],
)
def test_a_malformed_label_file_is_refused(content: bytes) -> None:
    with pytest.raises(labels.LabelFormatError):
        labels.parse_labels(content, "bad.csv")
