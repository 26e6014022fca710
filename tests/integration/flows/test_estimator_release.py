"""Swapping the model is one configuration value: a non-linear estimator goes through
retraining, the gate, registration and the release (process target) to production, and
production answers with that model's own predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import pytest

from backends import get_backends, get_release_backends
from core.interfaces import Endpoint
from core.results import ReleaseReport, RetrainingSummary
from core.settings import Settings
from flows.outcome import result_of
from flows.release import release
from flows.retraining import retraining
from tests.utils.flow_harness import ReleaseSettings
from training import model as model_io
from training.artifacts import read_golden
from training.params import GateConfig, TrainingParams
from training.schema import N_FEATURES

DATA = Path(__file__).resolve().parents[2] / "data"
ESTIMATOR: Final = "hist_gradient_boosting"


@pytest.fixture
def process_settings(release_to: ReleaseSettings) -> Settings:
    """Settings releasing to the process target on free ports."""
    # Trees answer one row in ~10-50 ms on a small machine (the linear fast path in ~1 ms),
    # and a loaded test machine adds more: this test is about what production serves, so
    # the latency check runs with room to spare rather than flake.
    return release_to("process", MLOPS_SMOKE_P95_BUDGET_MS="2000")


def retrain(**kwargs: Any) -> str:
    state = retraining(**kwargs, return_state=True)
    assert state.is_completed(), state.message
    summary = result_of(state, RetrainingSummary)
    assert summary is not None and summary.outcome == "registered", summary
    assert summary.version is not None
    return summary.version


def released(version: str) -> None:
    state = release(return_state=True)
    assert state.is_completed(), state.message
    report = result_of(state, ReleaseReport)
    assert report is not None and report.outcome == "released"
    assert report.production_after == version


def get(endpoint: Endpoint, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(
        "POST" if "json" in kwargs else "GET",
        f"{endpoint.url}{path}",
        headers={"Authorization": f"Bearer {endpoint.key}"},
        timeout=10,
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_non_linear_estimator_reaches_production(process_settings: Settings) -> None:
    settings = process_settings
    registry = get_backends(settings).registry
    target = get_release_backends(settings).target
    lake = get_backends(settings).datalake
    lake.ensure_containers(settings.landing_container)
    data = DATA / "good" / "diabetes_batch_b.csv"
    ref = lake.put(settings.landing_container, data.name, data.read_bytes())

    # v1: a deliberately weak Ridge in production (the floor is lowered to let it pass).
    v1 = retrain(
        data_uri=ref.uri,
        params=TrainingParams(hyperparameters={"alpha": 500.0}),
        gate=GateConfig(quality_floor=-10.0),
    )
    released(v1)
    production = target.current("production")
    assert production is not None
    assert get(production, "/model")["estimator_name"] == "ridge"

    # v2: only the configuration changes; the gate compares it with v1 on the same holdout.
    params = TrainingParams(estimator=ESTIMATOR, hyperparameters={"max_iter": 60})
    v2 = retrain(params=params)
    assert v2 != v1
    tags = registry.get(settings.model_name, v2).tags
    assert tags["estimator"] == ESTIMATOR and tags["params_digest"] == params.digest()
    released(v2)

    production = target.current("production")
    assert production is not None and production.model_version == v2
    info = get(production, "/model")
    assert info["version"] == v2
    assert info["estimator_name"] == ESTIMATOR
    assert info["estimator"] == "HistGradientBoostingRegressor"
    assert info["fast_path"] is False
    assert info["params"]["hyperparameters"] == params.hyperparameters

    # Production answers the golden rows with the registered model's own predictions.
    folder = registry.download(settings.model_name, v2, settings.state_path / "check")
    golden = read_golden(folder, N_FEATURES)
    expected = model_io.predict(model_io.load(folder), np.asarray(golden.rows))
    scored = get(production, "/score", json={"data": golden.rows})
    assert scored["model"]["version"] == v2
    np.testing.assert_allclose(scored["predictions"], expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scored["predictions"], golden.predictions, rtol=1e-9, atol=1e-9)
