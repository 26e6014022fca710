"""Window-file lines: one request per line, expanded into rows; the first format still read."""

from __future__ import annotations

import json

import pytest

from training.collected import CollectedRequest, CollectedRow, collected_rows
from training.schema import FEATURES

META = {"time": "2026-12-02T14:00:00+00:00", "model": "m", "version": "3", "data_fingerprint": "f"}


def test_a_request_line_expands_into_its_rows_matched_by_column_name() -> None:
    columns = tuple(reversed(FEATURES))  # order is read from "columns", not assumed
    first = tuple(float(i) for i in range(len(FEATURES)))
    request = CollectedRequest(
        request_id="r1",
        columns=columns,
        features=(first, tuple(v + 100 for v in first)),
        predictions=(1.0, 2.0),
        **META,
    )
    rows = collected_rows(["", request.to_json(), "  "])
    assert [(r.request_id, r.row, r.prediction) for r in rows] == [("r1", 0, 1.0), ("r1", 1, 2.0)]
    assert rows[1].features == {name: first[columns.index(name)] + 100 for name in FEATURES}
    assert (rows[0].time, rows[0].version) == (META["time"], "3")


def test_row_per_line_files_of_the_first_format_are_still_read() -> None:
    row = CollectedRow(
        request_id="old", row=4, features=dict.fromkeys(FEATURES, 0.5), prediction=9.0, **META
    )
    assert collected_rows([row.to_json()]) == [row]


@pytest.mark.parametrize(
    "change",
    [
        {"columns": list(FEATURES[1:])},  # a feature missing
        {"predictions": [1.0, 2.0]},  # more predictions than rows
    ],
)
def test_a_malformed_request_line_is_an_error(change: dict[str, object]) -> None:
    raw = {
        "request_id": "bad",
        **META,
        "columns": list(FEATURES),
        "features": [[0.0] * len(FEATURES)],
        "predictions": [1.0],
    } | change
    with pytest.raises(ValueError, match="bad"):
        collected_rows([json.dumps(raw)])
