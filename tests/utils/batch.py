"""Batch-scoring test helpers: feature files of any size, and the online service's answers.

``online_predictions`` runs the real scoring app (``scoring.app.create_app``) in this process
and posts the rows to ``/score`` as a client would, so batch output is compared with what
production answers, not with a second call of the same code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import SecretStr

from scoring.app import create_app
from scoring.settings import ScoringSettings
from tests.utils.scoring import API_KEY
from training.schema import FEATURES, TARGET

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROWS_PER_REQUEST = 10_000


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


def online_predictions(
    model_dir: Path, model_sha256: str, features: np.ndarray, version: str = "1"
) -> np.ndarray:
    """What the scoring service answers for ``features`` (rows in ``FEATURES`` order)."""
    settings = ScoringSettings(
        model_dir=model_dir,
        model_name="diabetes-ridge",
        model_version=version,
        model_sha256=model_sha256,
        api_key=SecretStr(API_KEY),
        max_rows=ROWS_PER_REQUEST,
        max_body_bytes=64 * 1024 * 1024,
    )
    answers: list[np.ndarray] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(create_app(settings), headers=headers) as client:
        for start in range(0, len(features), ROWS_PER_REQUEST):
            rows = features[start : start + ROWS_PER_REQUEST].tolist()
            response = client.post("/score", json={"data": rows})
            assert response.status_code == 200, response.text
            answers.append(np.asarray(response.json()["predictions"], dtype=np.float64))
    return np.concatenate(answers)
