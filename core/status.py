"""What ``mlops status`` reports per environment, as typed data, and its table for humans.

Pure: the caller (``mlops.status``) reads the deployment target, Prometheus and the lake and
fills these models; this module only says what is shown, how the drift check's blob reads,
and which PromQL gives the rates.

Rates come from the environment's HAProxy (its ``stable`` frontend): what clients of the
stable URL sent and got, over the last minute, including requests no replica answered; the
replicas' own counters also include HAProxy's health checks and Prometheus' scrapes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

# The monitoring flow's summary of its latest drift check, in the collected container.
LATEST_CHECK_BLOB = "monitoring/latest.json"
NEVER = "never"


def request_rate_query(environment: str) -> str:
    """PromQL: requests per second at the environment's stable URL, over the last minute."""
    selector = f'proxy="stable",environment="{environment}"'
    return f"sum(rate(haproxy_frontend_http_requests_total{{{selector}}}[1m]))"


def error_rate_query(environment: str) -> str:
    """PromQL: responses per second with a 4xx or 5xx status, over the last minute."""
    selector = f'proxy="stable",environment="{environment}",code=~"4xx|5xx"'
    return f"sum(rate(haproxy_frontend_http_responses_total{{{selector}}}[1m]))"


class DriftCheck(BaseModel):
    """The monitoring flow's latest check (``LATEST_CHECK_BLOB``)."""

    checked_at: datetime
    env: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    rows: int | None = None
    drifted: bool
    drifted_features: list[str] = []
    live_rmse: float | None = None
    flow_run_id: str | None = None

    def summary(self) -> str:
        """One line: when, and what it found."""
        when = _when(self.checked_at)
        if self.drifted:
            features = ", ".join(self.drifted_features) or "predictions"
            found = f"DRIFT in {features}"
        else:
            found = "no drift"
        rmse = f", live RMSE {self.live_rmse:.2f}" if self.live_rmse is not None else ""
        rows = f" ({self.rows} rows{rmse})" if self.rows is not None else rmse
        return f"{when}: {found}{rows}"


def parse_drift_check(data: bytes) -> DriftCheck | None:
    """The drift check in the blob's bytes, or None when they are not one (reported as
    ``never`` rather than failing the whole status)."""
    try:
        return DriftCheck.model_validate_json(data)
    except ValidationError:
        return None


class EnvironmentStatus(BaseModel):
    """One environment as ``mlops status`` shows it (None: unknown or not deployed)."""

    environment: str
    url: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    since: datetime | None = None
    request_rate: float | None = None  # requests per second, last minute
    error_rate: float | None = None  # 4xx/5xx responses per second, last minute
    last_drift_check: DriftCheck | None = None
    problems: list[str] = []  # what could not be read, and why

    @property
    def error_ratio(self) -> float | None:
        """Errors per request over the last minute (None without traffic)."""
        if not self.request_rate or self.error_rate is None:
            return None
        return self.error_rate / self.request_rate


class StatusReport(BaseModel):
    """Every environment, and where to look further."""

    prometheus_url: str
    prometheus_up: bool
    environments: list[EnvironmentStatus]


def render(report: StatusReport) -> str:
    """The report as a table (one row per environment) and the Prometheus line."""
    header = ("ENVIRONMENT", "MODEL", "SINCE", "REQ/S", "ERR/S", "ERRORS", "LAST DRIFT CHECK")
    rows = [header]
    for env in report.environments:
        model = f"{env.model_name} v{env.model_version}" if env.model_version else "not deployed"
        ratio = env.error_ratio
        rows.append(
            (
                env.environment,
                model,
                _when(env.since) if env.since else "-",
                _rate(env.request_rate),
                _rate(env.error_rate),
                f"{ratio:.1%}" if ratio is not None else "-",
                env.last_drift_check.summary() if env.last_drift_check else NEVER,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    state = "" if report.prometheus_up else " (not running: rates unknown; `mlops up` starts it)"
    lines.append(f"Prometheus: {report.prometheus_url}{state}")
    for env in report.environments:
        lines += [f"{env.environment}: {problem}" for problem in env.problems]
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
