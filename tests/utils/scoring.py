"""Fixtures for the scoring service and its clients: a model folder like training writes,
settings, clients. Used as a pytest plugin by tests/unit/scoring and tests/unit/core.

The model folder holds what ``training`` writes (``training.artifacts`` names the files):
the model (a Ridge fitted on scikit-learn's diabetes data unless another estimator is
given), ``run.json``, ``metrics.json`` and ``golden.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

with warnings.catch_warnings():
    # Starlette 1.x nudges towards the httpx2 fork; httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from scoring.app import create_app
from scoring.settings import ScoringSettings
from training.artifacts import GOLDEN_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, sha256_file
from training.schema import FEATURES

# One random key per test session: tests look for it in logs, so it must be unmistakable.
API_KEY = "sk-" + secrets.token_hex(16)
LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib", "scipy")


def write_model_folder(
    folder: Path,
    estimator: Any | None = None,
    *,
    fit_on_frame: bool = False,
    estimator_name: str = "ridge",
    **run_overrides: Any,
) -> Path:
    """Fit (a Ridge unless given) and write a model folder the way training does; return it.

    Args:
        folder: Where to write.
        estimator: An unfitted regressor; ``Ridge(alpha=0.5)`` by default.
        fit_on_frame: Fit on a DataFrame (the model then has ``feature_names_in_``) instead
            of a NumPy array in ``FEATURES`` order, as ``training`` does.
        estimator_name: The configuration name ``run.json`` records for the estimator.
        run_overrides: Keys to replace in ``run.json``.
    """
    frame = load_diabetes(as_frame=True).frame
    features, target = frame[list(FEATURES)], frame["target"].to_numpy()
    if estimator is None:
        estimator = Ridge(alpha=0.5)
    estimator.fit(features if fit_on_frame else features.to_numpy(), target)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, folder / MODEL_FILE)
    run = {
        "estimator": estimator_name,
        "params": {
            "estimator": estimator_name,
            "hyperparameters": {"alpha": 0.5, "fit_intercept": True},
            "holdout_fraction": 0.2,
            "seed": 42,
        },
        "data_fingerprint": "0" * 64,
        "features": list(FEATURES),
        "target": "target",
        "versions": {lib: metadata.version(lib) for lib in LIBRARIES},
    }
    run.update(run_overrides)
    (folder / RUN_FILE).write_text(json.dumps(run))
    (folder / METRICS_FILE).write_text(json.dumps({"rmse": 55.5, "r2": 0.42}))
    golden_rows = features.iloc[:20]
    golden = {
        "data": golden_rows.to_numpy().tolist(),
        "predictions": estimator.predict(
            golden_rows if fit_on_frame else golden_rows.to_numpy()
        ).tolist(),
    }
    (folder / GOLDEN_FILE).write_text(json.dumps(golden))
    return folder


@pytest.fixture(autouse=True)
def _no_scoring_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's exported SCORING_* variables must not steer the tests.
    for key in [k for k in os.environ if k.startswith("SCORING_")]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid model folder, shared by the session (do not modify it)."""
    return write_model_folder(tmp_path_factory.mktemp("model") / "diabetes-ridge")


@pytest.fixture(scope="session")
def model_sha(model_dir: Path) -> str:
    """The sha256 of the shared model file."""
    return sha256_file(model_dir / MODEL_FILE)


@pytest.fixture
def make_settings(model_dir: Path, model_sha: str) -> Callable[..., ScoringSettings]:
    """Build settings for the shared model; keyword arguments override fields."""

    def build(**overrides: Any) -> ScoringSettings:
        fields: dict[str, Any] = {
            "model_dir": model_dir,
            "model_name": "diabetes-ridge",
            "model_version": "7",
            "model_sha256": model_sha,
            "api_key": API_KEY,
        }
        fields.update(overrides)
        return ScoringSettings(**fields)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., ScoringSettings]) -> ScoringSettings:
    """Settings for the shared model with defaults."""
    return make_settings()


@pytest.fixture
def client(settings: ScoringSettings) -> Iterator[TestClient]:
    """A started app (lifespan run, model loaded) that sends the right key by default."""
    with TestClient(
        create_app(settings), headers={"Authorization": f"Bearer {API_KEY}"}
    ) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def api_key() -> str:
    """The session's API key (the right one)."""
    return API_KEY


@pytest.fixture(scope="session")
def model_folder_factory() -> Callable[..., Path]:
    """``write_model_folder`` for tests that need their own (broken) model folder."""
    return write_model_folder
