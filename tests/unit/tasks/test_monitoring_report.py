"""The monitoring artifacts: a row per feature with the verdict, a chart per feature."""

from __future__ import annotations

from datetime import UTC, datetime

from core.collected_lake import CheckRecord
from core.monitoring import conclude
from tasks.monitoring_report import drift_rows, report_markdown
from tests.utils.collected import predictions_of, traffic
from training import drift
from training.data import reference_dataset
from training.schema import FEATURES

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_the_table_and_the_charts_show_what_drifted() -> None:
    reference = reference_dataset()[list(FEATURES)]
    live = traffic(400, shift=1.0)
    live["prediction"] = predictions_of(live)
    predictions = predictions_of(traffic(400, seed=3))
    result = drift.detect_drift(reference, live, drift.Thresholds(), predictions)
    error = drift.LiveError(rows=10, rmse=50.0, mae=40.0)
    report = conclude("production", (NOW, NOW), NOW, 400, ["3"], result, error, ["l.csv"])
    rows = drift_rows(report)
    assert [r["feature"] for r in rows] == [*FEATURES, "prediction"]
    assert {r["feature"] for r in rows if r["drifted"] == "DRIFT"} == {"bmi", "s5", "prediction"}
    history = [
        CheckRecord(f"2026-12-02T1{i}:00", "production", "s", "e", 1, False, [], 50.0 + i, None)
        for i in range(3)
    ]
    markdown = report_markdown(report, reference, live, predictions, history)
    assert markdown.startswith("# Monitoring production: drift")
    assert (
        markdown.count("](data:image/svg+xml;base64,") == len(FEATURES) + 2
    )  # + prediction, error
    assert "![bmi (drift)]" in markdown and "live RMSE (new labels) | 50.00 (10 rows)" in markdown
