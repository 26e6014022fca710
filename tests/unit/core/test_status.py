"""mlops status' pure part: the drift check blob, the PromQL, the table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core.status import (
    EnvironmentStatus,
    StatusReport,
    error_rate_query,
    parse_drift_check,
    render,
    request_rate_query,
)

CHECK = {
    "checked_at": "2026-12-02T14:05:00Z",
    "env": "production",
    "window_start": "2026-12-02T13:00:00Z",
    "window_end": "2026-12-02T14:00:00Z",
    "rows": 1200,
    "drifted": True,
    "drifted_features": ["bmi", "s5"],
    "live_rmse": 61.234,
    "flow_run_id": "0b1c",
}


def test_a_drift_check_reads_and_summarises() -> None:
    check = parse_drift_check(json.dumps(CHECK).encode())
    assert check is not None and check.drifted
    assert check.summary() == "2026-12-02 14:05:00Z: DRIFT in bmi, s5 (1200 rows, live RMSE 61.23)"
    clean = parse_drift_check(json.dumps({**CHECK, "drifted": False, "live_rmse": None}).encode())
    assert clean is not None and clean.summary() == "2026-12-02 14:05:00Z: no drift (1200 rows)"


def test_a_blob_that_is_not_a_drift_check_reads_as_none() -> None:
    assert parse_drift_check(b"not json") is None
    assert parse_drift_check(json.dumps({"env": "production"}).encode()) is None


def test_rates_come_from_the_stable_frontend_of_one_environment() -> None:
    assert request_rate_query("qa") == (
        'sum(rate(haproxy_frontend_http_requests_total{proxy="stable",environment="qa"}[1m]))'
    )
    assert 'code=~"4xx|5xx"' in error_rate_query("qa") and "[1m]" in error_rate_query("qa")


def test_the_table_shows_each_environment_and_prometheus() -> None:
    check = parse_drift_check(json.dumps(CHECK).encode())
    report = StatusReport(
        prometheus_url="http://127.0.0.1:9090",
        prometheus_up=True,
        environments=[
            EnvironmentStatus(environment="qa"),
            EnvironmentStatus(
                environment="production",
                model_name="diabetes-ridge",
                model_version="4",
                since=datetime(2026, 12, 2, 13, 30, tzinfo=UTC),
                request_rate=40.0,
                error_rate=2.0,
                last_drift_check=check,
            ),
        ],
    )
    lines = render(report).splitlines()
    assert lines[0].split() == [
        "ENVIRONMENT", "MODEL", "SINCE", "REQ/S", "ERR/S", "ERRORS", "LAST", "DRIFT", "CHECK",
    ]  # fmt: skip
    assert lines[1].split() == ["qa", "not", "deployed", "-", "-", "-", "-", "never"]
    production = lines[2]
    for cell in ("diabetes-ridge v4", "2026-12-02 13:30:00Z", "40.00", "2.00", "5.0%", "DRIFT"):
        assert cell in production
    # Columns line up: every row's second column starts where the header's does.
    assert {line.index(line.split()[1]) for line in lines[:3]} == {lines[0].index("MODEL")}
    assert lines[-1] == "Prometheus: http://127.0.0.1:9090"
    down = render(report.model_copy(update={"prometheus_up": False}))
    assert "not running" in down.splitlines()[-1]


def test_the_report_round_trips_as_json() -> None:
    report = StatusReport(
        prometheus_url="http://p",
        prometheus_up=False,
        environments=[EnvironmentStatus(environment="qa", problems=["target: gone"])],
    )
    again = StatusReport.model_validate_json(report.model_dump_json())
    assert again == report
    assert "qa: target: gone" in render(report)
