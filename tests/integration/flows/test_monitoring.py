"""The monitoring loop on real parts: Azurite, the Prefect server, Great Expectations.

A drifted window -> ``mlops.drift.detected`` -> the retraining deployment's
``retrain-on-drift`` trigger (as prefect.yaml declares it) starts a run for the model; the
labels joined by the same check wait in landing and reach the curated set through the
training suite. A clean window: no event, no run."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from backends import get_backends
from core.lake import Lake
from core.results import MonitoringReport, RetrainingSummary
from core.settings import Settings, get_settings
from flows.monitoring import monitoring
from flows.outcome import result_of
from flows.retraining import retraining
from tests.utils.collected import traffic, write_labels, write_window
from tests.utils.relay import deployment_trigger, runs_of

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)
START = END - timedelta(minutes=20)


@pytest.fixture
def monitored(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings with a collected container of its own."""
    monkeypatch.setenv("MLOPS_COLLECTED_CONTAINER", f"{settings.landing_container}-collected")
    get_settings.cache_clear()
    return get_settings()


def retrain_on_drift(model: str) -> uuid.UUID:
    """A retraining deployment with prefect.yaml's drift trigger, matching only ``model``."""
    trigger = deployment_trigger(
        "retraining", {"prefect.resource.id": f"mlops.model.{model}"}, name="retrain-on-drift"
    )
    deployment = cast(
        RunnerDeployment,
        retraining.to_deployment(
            name=f"drift-{model}", triggers=[DeploymentEventTrigger(**trigger)]
        ),
    )
    return cast(uuid.UUID, deployment.apply())


def wait_for(condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
    return value


def check(model: str) -> MonitoringReport:
    state = monitoring(model_name=model, window_end=END, window_minutes=60, return_state=True)
    report = result_of(state, MonitoringReport)
    assert report is not None, state
    return report


def test_drift_starts_a_retraining_that_takes_the_labelled_rows(monitored: Settings) -> None:
    model = f"m{uuid.uuid4().hex[:8]}"
    deployment_id = retrain_on_drift(model)
    datalake = get_backends(monitored).datalake
    container = monitored.collected_container
    # Labels for an earlier, clean window; the latest window has drifted.
    earlier = traffic(150, seed=5)
    rows = write_window(datalake, container, "production", START - timedelta(hours=2), earlier)
    write_labels(datalake, container, "day-1.csv", rows, earlier["target"].tolist())
    drifted = traffic(400, shift=1.0)
    write_window(datalake, container, "production", START, drifted, request_prefix="late")

    report = check(model)
    assert report.outcome == "drift" and {"bmi", "s5"} <= set(report.drifted_features)
    assert report.inputs_valid is True and report.live_rmse is not None
    (labelled,) = report.labelled_data

    (run,) = wait_for(lambda: runs_of(deployment_id))
    assert run.parameters == {"model_name": model}
    lake = Lake.of(datalake, monitored)
    assert [r.name for r in lake.landed()] == [labelled]  # what that run will take

    # What that run does with it (run here: this test starts no worker): the training
    # suite's gate, then the curated set.
    state = retraining(model_name=model, return_state=True)
    summary = result_of(state, RetrainingSummary)
    assert summary is not None, state
    (file,) = summary.files
    assert (file.file, file.result) == (labelled, "merged")
    assert summary.curated_rows == 150 and lake.landed() == []


def test_a_clean_window_emits_nothing_and_starts_nothing(monitored: Settings) -> None:
    model = f"m{uuid.uuid4().hex[:8]}"
    deployment_id = retrain_on_drift(model)
    datalake = get_backends(monitored).datalake
    write_window(datalake, monitored.collected_container, "production", START, traffic(400))
    report = check(model)
    assert report.outcome == "no drift" and report.inputs_valid is True
    time.sleep(5)  # what a trigger would have started by now
    assert runs_of(deployment_id) == []
