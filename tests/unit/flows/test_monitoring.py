"""The monitoring flow on in-memory backends: drift -> event, clean -> nothing, small window
-> no verdict, labels -> one landing file per label file (and live error)."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import Task, task
from prefect.cache_policies import NONE

import flows.monitoring as monitoring_module
import tasks.monitoring as monitoring_tasks
from backends import Backends
from core.collected_lake import LATEST
from core.events import DRIFT_DETECTED, EventSpec
from core.provenance import written_by_monitoring
from core.results import MonitoringReport
from core.settings import Settings
from expectations.report import ValidationReport
from flows.monitoring import monitoring
from flows.outcome import result_of
from tests.utils.collected import traffic, write_labels, write_window
from training.schema import COLUMNS

END = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
START = END - timedelta(minutes=30)


@task(name="validate-window", cache_policy=NONE)
def _inputs_pass(frame: pd.DataFrame, file: str, docs_dir: Path) -> ValidationReport:
    """Stands in for the GX run (tested in tests/integration/flows/test_monitoring.py)."""
    return ValidationReport(success=True, suite="scoring_inputs", file=file, rows=len(frame))


@pytest.fixture(autouse=True)
def _no_retry_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in vars(monitoring_module).items():
        if isinstance(value, Task):
            monkeypatch.setattr(monitoring_module, name, value.with_options(retry_delay_seconds=0))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[EventSpec]:
    events: list[EventSpec] = []
    monkeypatch.setattr(monitoring_tasks, "send_events", lambda specs: events.extend(specs))
    monkeypatch.setattr(monitoring_module, "validate_window", _inputs_pass)
    return events


def run(backends: Backends, **kwargs: Any) -> MonitoringReport:
    options: dict[str, Any] = {"window_end": END, "window_minutes": 60, **kwargs}
    state = monitoring(resources=backends, return_state=True, **options)
    report = result_of(state, MonitoringReport)
    assert report is not None, state
    return report


def latest(backends: Backends, settings: Settings) -> dict[str, Any]:
    content, _ = backends.datalake.get(settings.collected_container, LATEST)
    return json.loads(content)


def test_a_drifted_window_emits_drift_detected_with_the_features(
    backends: Backends, settings: Settings, sent: list[EventSpec]
) -> None:
    write_window(
        backends.datalake,
        settings.collected_container,
        "production",
        START,
        traffic(400, shift=1.0),
    )
    report = run(backends)
    assert report.outcome == "drift"
    assert set(report.drifted_features) == {"bmi", "s5"}
    (event,) = sent
    assert event.event == DRIFT_DETECTED
    assert set(event.payload["drifted_features"]) == {"bmi", "s5"}
    record = latest(backends, settings)
    assert record["drifted"] is True and record["rows"] == 400 and record["env"] == "production"
    assert set(record["drifted_features"]) == {"bmi", "s5"} and record["live_rmse"] is None


def test_a_clean_window_emits_nothing(
    backends: Backends, settings: Settings, sent: list[EventSpec]
) -> None:
    write_window(backends.datalake, settings.collected_container, "production", START, traffic(400))
    report = run(backends)
    assert report.outcome == "no drift" and report.drifted_features == ()
    assert sent == []
    assert latest(backends, settings)["drifted"] is False


def test_a_small_or_empty_window_gets_no_verdict(
    backends: Backends, settings: Settings, sent: list[EventSpec]
) -> None:
    assert run(backends).outcome == "no data"
    write_window(
        backends.datalake, settings.collected_container, "production", START, traffic(50, shift=3.0)
    )
    assert run(backends).outcome == "too few rows"
    # A window outside [end - 60 min, end) is not read.
    write_window(
        backends.datalake, settings.collected_container, "production", END, traffic(400, shift=3.0)
    )
    assert run(backends).rows == 50
    assert sent == []


def test_prediction_drift_is_judged_against_the_versions_first_window(
    backends: Backends, settings: Settings, sent: list[EventSpec]
) -> None:
    container = settings.collected_container
    write_window(
        backends.datalake, container, "production", START - timedelta(hours=2), traffic(400)
    )
    first = run(backends, window_end=START - timedelta(hours=1))
    assert first.prediction is None  # that window became the reference
    write_window(backends.datalake, container, "production", START, traffic(400, shift=1.0))
    report = run(backends)
    assert report.prediction is not None and report.prediction_drift is True
    assert sent[-1].payload["prediction_drift"] is True


def test_labels_join_once_into_a_landing_file_and_give_the_live_error(
    backends: Backends, settings: Settings, sent: list[EventSpec]
) -> None:
    container = settings.collected_container
    frame = traffic(300)
    rows = write_window(backends.datalake, container, "production", START, frame)
    targets = [r.prediction + 10.0 for r in rows[:120]]  # every prediction 10 too low
    write_labels(backends.datalake, container, "batch-1.csv", rows[:120], targets)
    report = run(backends)
    assert report.live_rmse == pytest.approx(10.0) and report.labelled_rows == 120
    (name,) = report.labelled_data
    landed = [r.name for r in backends.datalake.list(settings.landing_container)]
    assert landed == [name]
    content, blob = backends.datalake.get(settings.landing_container, name)
    # Marked as the monitoring flow's: retraining validates it with the labelled_rows suite.
    assert written_by_monitoring(blob, hashlib.sha256(content).hexdigest())
    csv = pd.read_csv(io.BytesIO(content))
    assert tuple(csv.columns) == COLUMNS and len(csv) == 120
    assert csv["target"].tolist() == pytest.approx(targets)
    assert latest(backends, settings)["live_rmse"] == pytest.approx(10.0)
    # Joined once: a second check writes nothing new and reports no new labels.
    backends.datalake.delete(settings.landing_container, name)  # as if retraining took it
    again = run(backends)
    assert again.labelled_data == () and again.live_rmse is None
    assert backends.datalake.list(settings.landing_container) == []
