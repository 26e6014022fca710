"""Batch-scoring test helpers: feature files of any size, and the online service's answers.

``online_predictions`` starts the real scoring service (``python -m scoring``, the process the
local targets run) and posts the rows to ``/score`` over HTTP as clients do, in requests of
mixed sizes (one row, a few, hundreds, thousands), so batch output is compared with what
production answers, request sizes and all, not with a second call of the same code.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tests.utils.scoring import API_KEY
from tests.utils.scoring_process import scoring_service
from training.predict import ACCUMULATE_ROWS
from training.schema import FEATURES, TARGET

ROWS_PER_REQUEST = 10_000
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def feature_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Diabetes-like features (and a target column batch scoring must ignore)."""
    values = np.random.default_rng(seed).normal(0.0, 0.05, size=(rows, len(FEATURES)))
    frame = pd.DataFrame(values, columns=list(FEATURES))
    frame[TARGET] = 150.0
    return frame


def write_feature_csv(path: Path, rows: int, seed: int = 0, block: int = 200_000) -> Path:
    """A CSV of ``rows`` feature rows, written a block at a time (rows ``i`` come from seed+i)."""
    for start in range(0, rows, block):
        frame = feature_frame(min(block, rows - start), seed + start)
        frame.to_csv(path, mode="a" if start else "w", header=start == 0, index=False)
    return path


def write_feature_parquet(path: Path, rows: int, seed: int = 0, row_group: int = 20_000) -> Path:
    """A Parquet file of ``rows`` feature rows, one row group per ``row_group`` rows (as the
    curated sets are written), built a row group at a time."""
    first = feature_frame(min(row_group, rows), seed)
    schema = pa.Schema.from_pandas(first, preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, row_group):
            frame = (
                first if start == 0 else feature_frame(min(row_group, rows - start), seed + start)
            )
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    return path


def request_sizes(rows: int, alone: int = 500) -> list[int]:
    """How ``online_predictions`` cuts ``rows`` into requests: ``alone`` single-row requests
    first, then sizes either side of every boundary a predictor might have, in turn."""
    cycle = itertools.cycle((1, 3, 7, ACCUMULATE_ROWS, ACCUMULATE_ROWS + 1, 999, ROWS_PER_REQUEST))
    sizes = [1] * min(alone, rows)
    while (left := rows - sum(sizes)) > 0:
        sizes.append(min(next(cycle), left))
    return sizes


def online_predictions(
    model_dir: Path, model_sha256: str, features: np.ndarray, version: str = "1"
) -> np.ndarray:
    """What the scoring service, running as a process, answers for ``features`` (rows in
    ``FEATURES`` order), asked in requests of ``request_sizes``."""
    answers: list[np.ndarray] = []
    settings: dict[str, str | int] = {"model_version": version, "max_rows": ROWS_PER_REQUEST}
    with (
        scoring_service(model_dir, model_sha256, API_KEY, **settings, max_body_bytes=2**26) as svc,
        httpx.Client(base_url=svc.url, timeout=60) as client,
    ):
        start = 0
        for size in request_sizes(len(features)):
            rows = features[start : start + size].tolist()
            start += size
            response = client.post("/score", json={"data": rows}, headers=HEADERS)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["model"]["version"] == version
            answers.append(np.asarray(answer["predictions"], dtype=np.float64))
    return np.concatenate(answers)
