"""Batch scoring of a file far larger than its memory bound (the chunk): the job's peak memory
does not grow with the file, and every prediction is the very float64 the online service
answers for that row.

The job runs as the backends run it (``python -m training.batch_score`` in its own process) and
reports its peak RSS (``getrusage``) in ``lineage.json``. The same file scored in one chunk shows
the measurement sees a whole-file read: the bound is not met by accident. The online answers
come from the scoring service running as a process, asked over HTTP in requests of one row up
to 10,000 (``tests.utils.batch.request_sizes``), and are compared with ``==``: batch and
service share ``training.predict`` (a row's sum does not depend on the rows around it), the
predictions file stores float64 (Parquet), and the service's JSON carries the shortest repr
that reads back as the same double.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.utils.batch import online_predictions, write_feature_parquet
from tests.utils.scoring import write_model_folder
from training.artifacts import MODEL_FILE, sha256_file
from training.batch import LINEAGE_FILE, read_predictions
from training.schema import FEATURES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
# The small file is already 50 chunks: the allocator's warm-up over the first chunks is a
# constant, not growth (measured: 20k rows 224 MiB, 300k 235, 600k 237).
SMALL, LARGE, CHUNK = 100_000, 400_000, 2_000
# What a whole-file read holds at the least: the large file's features as float64 (32 MB).
# The chunked job may grow by a quarter of that, at most.
WHOLE_FILE_BYTES = LARGE * len(FEATURES) * 8
BOUND = WHOLE_FILE_BYTES // 4


def score(data: Path, model: Path, out: Path, chunk_rows: int) -> dict[str, Any]:
    sha = sha256_file(model / MODEL_FILE)
    command = [sys.executable, "-m", "training.batch_score", "--data", str(data)]
    command += ["--model", str(model), "--model-name", "diabetes-ridge", "--model-version", "1"]
    command += ["--model-sha256", sha, "--output", str(out), "--chunk-rows", str(chunk_rows)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lineage: dict[str, Any] = json.loads((out / LINEAGE_FILE).read_text())
    return lineage


def test_memory_stays_flat_and_every_prediction_matches_online_scoring(tmp_path: Path) -> None:
    model = write_model_folder(tmp_path / "model")
    small = write_feature_parquet(tmp_path / "small.parquet", SMALL)
    large = write_feature_parquet(tmp_path / "large.parquet", LARGE, seed=1)

    base = score(small, model, tmp_path / "small", CHUNK)["peak_rss_bytes"]
    chunked = score(large, model, tmp_path / "large", CHUNK)
    whole = score(large, model, tmp_path / "whole", LARGE)["peak_rss_bytes"]

    assert large.stat().st_size > 150 * CHUNK * len(FEATURES) * 8  # the file dwarfs a chunk
    assert chunked["chunks"] == LARGE // CHUNK and chunked["input"]["rows"] == LARGE
    grown = chunked["peak_rss_bytes"] - base
    assert grown < BOUND, f"peak RSS grew {grown / 2**20:.1f} MiB with a 4x larger file"
    # The measurement can see a whole-file read (so the bound above means something).
    assert whole - base > BOUND, f"one chunk grew only {(whole - base) / 2**20:.1f} MiB"

    predictions = read_predictions(tmp_path / "large" / "predictions.parquet")
    assert predictions["row"].tolist() == list(range(LARGE))
    features = pd.read_parquet(large, columns=list(FEATURES)).to_numpy()
    online = online_predictions(model, sha256_file(model / MODEL_FILE), features)
    batch = predictions["prediction"].to_numpy()
    differ = np.flatnonzero(batch != online)
    assert differ.size == 0, f"{differ.size} rows differ, the first: {differ[:5].tolist()}"
