"""Monitoring: a window of collected scoring rows -> scoring-inputs suite -> drift against the
training reference, live error from labels -> report, record, ``mlops.drift.detected``.

Only composition lives here; the steps are tasks in ``tasks/monitoring.py``. Labels joined
in a check become a landing file, so the retraining that ``mlops.drift.detected`` starts
(prefect.yaml, ``retrain-on-drift``) takes them through the Great Expectations gate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import State

from backends import Backends
from core import events
from core.collected_lake import CollectedLake
from core.lake import Lake, stamp
from core.monitoring import check_record, conclude
from core.results import MonitoringReport
from core.settings import get_settings
from flows.outcome import completed
from flows.resources import default_backends
from tasks.monitoring import (
    announce_drift,
    check_history,
    detect_drift,
    join_new_labels,
    prediction_reference,
    read_window,
    record_check,
    training_reference,
    validate_window,
)
from tasks.monitoring_report import publish_monitoring_report
from training.drift import Thresholds

HISTORY = 48  # checks on the "live error over time" chart


@flow(name="monitoring", log_prints=False)
def monitoring(
    environment: str | None = None,
    window_minutes: int | None = None,
    window_end: datetime | None = None,
    model_name: str | None = None,
    resources: Backends | None = None,
) -> State[MonitoringReport]:
    """Check the last window of collected scoring rows for drift and live error.

    Args:
        environment: Whose collected rows (default ``MLOPS_MONITORING_ENVIRONMENT``).
        window_minutes: The window's length (default ``MLOPS_MONITORING_WINDOW_MINUTES``).
        window_end: The window's end (default: now); windows starting before it count.
        model_name: The model the drift event names (default from settings).
        resources: The data lake to work with (tests hand an in-memory one).
    """
    logger = get_run_logger()
    settings = get_settings()
    backends = resources or default_backends(settings)
    env = environment or settings.monitoring_environment
    name = model_name or settings.model_name
    collected = CollectedLake(backends.datalake, settings.collected_container)
    collected.ensure()
    lake = Lake.of(backends.datalake, settings)
    lake.ensure()  # labelled rows go to landing
    now = datetime.now(UTC)
    end = (window_end or now).astimezone(UTC)
    start = end - timedelta(minutes=window_minutes or settings.monitoring_window_minutes)
    thresholds = Thresholds(settings.drift_p_value, settings.drift_psi, settings.drift_min_rows)

    joined = join_new_labels(
        collected, lake, env, end - timedelta(hours=settings.label_lookback_hours), end
    )
    for problem in joined.problems:
        logger.warning("labels: %s", problem)

    frame = read_window(collected, env, start, end)
    reference = predictions = drift = validation = None
    if not frame.empty:
        validation = validate_window(frame, f"{env}-window-{stamp(start)}", settings.data_docs_path)
        reference = training_reference(lake)
        predictions = prediction_reference(collected, frame, thresholds.min_rows, start.isoformat())
        drift = detect_drift(reference, frame, thresholds, predictions)
    report = conclude(
        env,
        (start, end),
        now,
        len(frame),
        sorted(set(frame["version"])) if not frame.empty else [],
        drift,
        joined.error,
        joined.landing,
        inputs_valid=validation.success if validation else None,
        validation=validation.summary() if validation else None,
        data_docs=settings.data_docs_link(validation.data_docs) if validation else None,
    )
    run_id = str(flow_run.id) if flow_run.id else None
    record_check(collected, check_record(report, run_id), stamp(now))
    history = check_history(collected, env, HISTORY)
    publish_monitoring_report(report, reference, frame, predictions, history)
    if report.drifted:
        announce_drift(
            events.drift_detected(
                name,
                env,
                list(report.drifted_features),
                bool(report.prediction_drift),
                (report.window_start, report.window_end),
                list(report.labelled_data),
            )
        )
    logger.info(report.message)
    return completed(report.message, report)
