"""The monitoring check's artifacts: a drift table and a markdown report with charts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from core import charts
from core.collected_lake import CheckRecord
from core.results import ColumnDriftRecord, MonitoringReport
from training.drift import PREDICTION

SAMPLE = 5000  # values per chart series: enough for a histogram, small in the artifact


def drift_rows(report: MonitoringReport) -> list[dict[str, Any]]:
    """One table row per feature (and the prediction): reference vs live, tests, verdict."""
    columns = [*report.features, *([report.prediction] if report.prediction else [])]
    return [_row(c) for c in columns]


def _row(c: ColumnDriftRecord) -> dict[str, Any]:
    return {
        "feature": c.column,
        "reference mean": round(c.reference_mean, 4),
        "live mean": round(c.live_mean, 4),
        "KS statistic": round(c.ks_statistic, 4),
        "p-value": float(f"{c.p_value:.3g}"),
        "PSI": round(c.psi, 3),
        "drifted": "DRIFT" if c.drifted else "no",
    }


def _sample(values: np.ndarray) -> list[float]:
    if len(values) > SAMPLE:
        values = np.random.default_rng(0).choice(values, SAMPLE, replace=False)
    return [float(v) for v in values]


def report_markdown(
    report: MonitoringReport,
    reference: pd.DataFrame | None,
    live: pd.DataFrame | None,
    predictions: np.ndarray | None,
    history: list[CheckRecord],
) -> str:
    """The report a person reads at a glance: verdict, window, charts."""
    lines = [f"# Monitoring {report.environment}: {report.outcome}", "", report.message, ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| window | {report.window_start} .. {report.window_end} |"]
    lines += [
        f"| rows | {report.rows} |",
        f"| model versions | {', '.join(report.model_versions) or '—'} |",
    ]
    if report.validation:
        lines += [f"| scoring inputs suite | {report.validation} |"]
    if report.data_docs:
        lines += [f"| Data Docs | {report.data_docs} |"]
    rmse = "—" if report.live_rmse is None else f"{report.live_rmse:.2f}"
    lines += [f"| live RMSE (new labels) | {rmse} ({report.labelled_rows} rows) |"]
    if report.labelled_data:
        lines += [f"| labelled landing files | {', '.join(report.labelled_data)} |"]
    lines.append("")
    if reference is not None and live is not None and not live.empty:
        drifted = set(report.drifted_features)
        lines += ["## Feature distributions: reference (grey) vs live (red)", ""]
        for name in reference.columns:
            title = f"{name}{' (drift)' if name in drifted else ''}"
            svg = charts.histograms(
                title,
                [
                    ("reference", _sample(reference[name].to_numpy())),
                    ("live", _sample(live[name].to_numpy())),
                ],
            )
            lines.append(f"![{title}]({charts.data_uri(svg)})")
        lines.append("")
        if predictions is not None:
            svg = charts.histograms(
                "prediction",
                [
                    ("reference", _sample(predictions)),
                    ("live", _sample(live[PREDICTION].to_numpy())),
                ],
            )
            lines += ["## Prediction drift", "", f"![prediction]({charts.data_uri(svg)})", ""]
    points = [(h.checked_at[:16], h.live_rmse) for h in history if h.live_rmse is not None]
    if points:
        svg = charts.line("live RMSE per check", points, "RMSE")
        lines += ["## Live error over time", "", f"![live RMSE]({charts.data_uri(svg)})", ""]
    return "\n".join(lines)


@task(name="publish-monitoring-report", cache_policy=NONE)
def publish_monitoring_report(
    report: MonitoringReport,
    reference: pd.DataFrame | None,
    live: pd.DataFrame | None,
    predictions: np.ndarray | None,
    history: list[CheckRecord],
) -> None:
    create_markdown_artifact(
        key="monitoring-report",
        markdown=report_markdown(report, reference, live, predictions, history),
        description=report.message,
    )
    if report.features:
        create_table_artifact(
            key="drift-table", table=drift_rows(report), description=report.message
        )
