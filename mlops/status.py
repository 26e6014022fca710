"""Gather ``mlops status``'s per-environment report: the deployment target (what serves, since
when), the local Prometheus (request and error rates) and the lake (the last drift check).

Each source may be down (a stopped stack, no lake): its part of the report is then empty and
the reason is listed, never an exception. The table and the models are ``core.status``'s.
"""

from __future__ import annotations

from typing import Protocol

from core.interfaces import BackendError, DataLake, DeploymentTarget, NotFoundError
from core.status import (
    LATEST_CHECK_BLOB,
    DriftCheck,
    EnvironmentStatus,
    StatusReport,
    error_rate_query,
    parse_drift_check,
    request_rate_query,
)


class MetricsSource(Protocol):
    """What the report needs from Prometheus (``backends.local.prometheus.PrometheusApi``)."""

    url: str

    def ready(self) -> bool: ...

    def scalar(self, expr: str) -> float | None: ...


def gather(
    environments: tuple[str, ...],
    target: DeploymentTarget | None,
    metrics: MetricsSource,
    lake: DataLake | None,
    container: str,
) -> StatusReport:
    """Build the report.

    Args:
        environments: Environment names, in display order.
        target: The deployment target of QA and production (None: it cannot be built).
        metrics: The Prometheus to query.
        lake: The data lake holding the drift check (None: unavailable).
        container: The container of ``LATEST_CHECK_BLOB`` (``Settings.collected_container``:
            the monitoring flow writes it there).
    """
    prometheus_up = metrics.ready()
    check, check_problem = _latest_check(lake, container)
    report = StatusReport(prometheus_url=metrics.url, prometheus_up=prometheus_up, environments=[])
    for name in environments:
        env = EnvironmentStatus(environment=name)
        if check_problem:
            env.problems.append(check_problem)
        if check is not None and check.env == name:
            env.last_drift_check = check
        if target is not None:
            try:
                endpoint = target.current(name)
            except BackendError as exc:
                env.problems.append(f"target: {exc}")
            else:
                if endpoint is not None:
                    env.url = endpoint.url
                    env.model_name = endpoint.model_name
                    env.model_version = endpoint.model_version
                    env.since = endpoint.since
        if prometheus_up:
            try:
                env.request_rate = metrics.scalar(request_rate_query(name))
                env.error_rate = metrics.scalar(error_rate_query(name))
            except BackendError as exc:
                env.problems.append(f"prometheus: {exc}")
            if env.request_rate is not None and env.error_rate is None:
                env.error_rate = 0.0  # traffic without a single error: no 4xx/5xx series yet
        report.environments.append(env)
    return report


def _latest_check(lake: DataLake | None, container: str) -> tuple[DriftCheck | None, str]:
    if lake is None:
        return None, ""
    try:
        data, _ = lake.get(container, LATEST_CHECK_BLOB)
    except NotFoundError:
        return None, ""  # never checked
    except Exception as exc:  # the lake may simply not be running
        return None, f"drift check unreadable ({type(exc).__name__})"
    check = parse_drift_check(data)
    if check is None:
        return None, f"{container}/{LATEST_CHECK_BLOB} is not a drift check"
    return check, ""
