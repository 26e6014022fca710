"""Pure rules that conclude a monitoring check, and the record ``mlops status`` reads."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from core.collected_lake import CheckRecord
from core.results import ColumnDriftRecord, MonitoringReport
from training.drift import ColumnDrift, DriftReport, LiveError


def column_record(column: ColumnDrift) -> ColumnDriftRecord:
    return ColumnDriftRecord(**asdict(column))  # the same fields, as a pydantic record


def conclude(
    environment: str,
    window: tuple[datetime, datetime],
    checked_at: datetime,
    rows: int,
    versions: list[str],
    drift: DriftReport | None,
    error: LiveError | None,
    labelled_data: list[str],
    inputs_valid: bool | None = None,
    validation: str | None = None,
    data_docs: str | None = None,
) -> MonitoringReport:
    """The check's report: ``drift`` is None when the window was empty."""
    if drift is None or rows == 0:
        outcome, message = "no data", f"{environment}: nothing collected in the window"
    elif not drift.assessed:
        outcome = "too few rows"
        message = f"{environment}: {rows} rows in the window, too few to judge drift"
    elif drift.drifted:
        what = [*drift.drifted_features, *(["prediction"] if drift.prediction_drifted else [])]
        outcome, message = "drift", f"{environment}: drift in {', '.join(what)} ({rows} rows)"
    else:
        outcome, message = "no drift", f"{environment}: no drift ({rows} rows)"
    if error is not None:
        message += f"; live RMSE {error.rmse:.2f} on {error.rows} labelled rows"
    features = tuple(column_record(c) for c in drift.features) if drift else ()
    prediction = drift.prediction if drift else None
    return MonitoringReport(
        environment=environment,
        outcome=outcome,  # type: ignore[arg-type]  # one of the Literal's words above
        message=message,
        checked_at=checked_at.isoformat(),
        window_start=window[0].isoformat(),
        window_end=window[1].isoformat(),
        rows=rows,
        model_versions=tuple(versions),
        inputs_valid=inputs_valid,
        validation=validation,
        data_docs=data_docs,
        features=features,
        prediction=column_record(prediction) if prediction else None,
        drifted_features=tuple(drift.drifted_features) if drift and drift.assessed else (),
        prediction_drift=prediction.drifted if prediction else None,
        live_rmse=error.rmse if error else None,
        live_mae=error.mae if error else None,
        labelled_rows=error.rows if error else 0,
        labelled_data=tuple(labelled_data),
    )


def check_record(report: MonitoringReport, flow_run_id: str | None) -> CheckRecord:
    return CheckRecord(
        checked_at=report.checked_at,
        env=report.environment,
        window_start=report.window_start,
        window_end=report.window_end,
        rows=report.rows,
        drifted=report.drifted,
        drifted_features=list(report.drifted_features),
        live_rmse=report.live_rmse,
        flow_run_id=flow_run_id,
    )
