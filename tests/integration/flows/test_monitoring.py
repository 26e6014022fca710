"""The monitoring loop on real parts: Azurite, the Prefect server, Great Expectations.

A drifted window -> ``mlops.drift.detected`` -> the retraining deployment's
``retrain-on-drift`` trigger (as prefect.yaml declares it) starts a run for the model; the
labels joined by the same check wait in landing, marked as the monitoring flow's, and reach
the curated set through the ``labelled_rows`` suite (drifted rows pass; broken ones do not);
a file that only borrows their name gets the training suite. A clean window: no event, no
run."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from backends import get_backends
from core.lake import REASON_SUFFIX, Lake, basename
from core.results import FileResult, MonitoringReport, RetrainingSummary
from core.settings import Settings, get_settings
from flows.monitoring import monitoring
from flows.outcome import result_of
from flows.retraining import retraining
from tests.utils.collected import traffic, write_labels, write_window
from tests.utils.relay import deployment_trigger, runs_of
from training.schema import COLUMNS

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
    backends = get_backends(monitored)
    datalake, container = backends.datalake, monitored.collected_container
    # Labels for an earlier, clean window, and for the latest window, which has drifted;
    # one more label file of that window carries targets out of any plausible range.
    earlier = traffic(150, seed=5)
    rows = write_window(datalake, container, "production", START - timedelta(hours=2), earlier)
    write_labels(datalake, container, "day-1.csv", rows, earlier["target"].tolist())
    drifted = traffic(400, shift=1.0)
    late = write_window(datalake, container, "production", START, drifted, request_prefix="late")
    write_labels(datalake, container, "day-2.csv", late[:200], drifted["target"][:200].tolist())
    write_labels(datalake, container, "day-3.csv", late[200:220], [5000.0] * 20)
    # A file that only takes the labelled files' name, with the same drifted rows.
    lake = Lake.of(datalake, monitored)
    fake = "labelled-day-2-00000000.csv"
    lake.ensure()
    datalake.put(lake.landing, fake, drifted[list(COLUMNS)].to_csv(index=False).encode())

    report = check(model)
    assert report.outcome == "drift" and {"bmi", "s5"} <= set(report.drifted_features)
    assert report.inputs_valid is True and report.live_rmse is not None
    assert len(report.labelled_data) == 3 and report.labelled_rows == 370
    clean, shifted, broken = sorted(report.labelled_data)

    (run,) = wait_for(lambda: runs_of(deployment_id))
    assert run.parameters == {"model_name": model}
    assert sorted(r.name for r in lake.landed()) == sorted([*report.labelled_data, fake])

    # What that run does with them (run here: this test starts no worker): the gate, the
    # curated set, a challenger trained on it.
    state = retraining(model_name=model, return_state=True)
    summary = result_of(state, RetrainingSummary)
    assert summary is not None, state
    results = {f.file: f for f in summary.files}
    assert results[clean].details == "150 rows, labelled_rows suite"
    # Shifted by 1 sigma, beyond the training suite's mean bounds: taken all the same.
    assert results[shifted].details == "200 rows, labelled_rows suite"
    assert results[broken].result == "quarantined"
    assert "of labelled_rows failed: target: expect_column_values_to_be_between (20 rows)" in (
        results[broken].details or ""
    )
    reason, _ = datalake.get(monitored.quarantine_container, f"{quarantined(results[broken])}")
    assert json.loads(reason)["reason"] == results[broken].details
    assert results[fake].result == "quarantined"  # the name alone: the training suite
    assert "of training_data failed" in (results[fake].details or "")
    assert "bmi: expect_column_mean_to_be_between" in (results[fake].details or "")

    curated = lake.curated_set()
    assert curated is not None and curated.rows == summary.curated_rows == 350
    assert summary.data_fingerprint == curated.fingerprint
    assert summary.outcome == "registered", summary.outcome
    candidate = backends.registry.get_alias(model, "candidate")
    assert candidate is not None and candidate.tags["data_fingerprint"] == curated.fingerprint
    assert lake.landed() == []


def quarantined(result: FileResult) -> str:
    """The name of a quarantined file's reason blob."""
    assert result.quarantined_as
    return f"{basename(result.quarantined_as)}{REASON_SUFFIX}"


def test_a_clean_window_emits_nothing_and_starts_nothing(monitored: Settings) -> None:
    model = f"m{uuid.uuid4().hex[:8]}"
    deployment_id = retrain_on_drift(model)
    datalake = get_backends(monitored).datalake
    write_window(datalake, monitored.collected_container, "production", START, traffic(400))
    report = check(model)
    assert report.outcome == "no drift" and report.inputs_valid is True
    time.sleep(5)  # what a trigger would have started by now
    assert runs_of(deployment_id) == []
