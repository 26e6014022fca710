"""Fixtures for the Docker tests: one engine for the session, a real model folder.

- ``docker_host``, ``docker_client``, ``cache_dir``: see ``tests/integration/conftest.py``.
- ``model_dir`` (session): a model folder written by ``training.train`` on scikit-learn's
  diabetes data (``model.joblib``, ``run.json``, ``metrics.json``, ``golden.json``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes

from training.params import TrainingParams
from training.train import train, write_artifacts

STATE = Path(__file__).resolve().parents[3] / ".mlops"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = load_diabetes(as_frame=True).frame
    folder = tmp_path_factory.mktemp("model")
    write_artifacts(train(frame, TrainingParams()), folder)
    return folder
