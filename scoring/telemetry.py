"""Traces and logs of the scoring service to Application Insights, when a connection string
is set (``SCORING_APPINSIGHTS_CONNECTION_STRING`` or its ``_FILE``); off otherwise, at no cost.

On: ``azure-monitor-opentelemetry`` exports a server span per request (its attributes carry
the request id, route and status) and the service's log records (``scoring`` loggers, the
request log included, with their fields as custom dimensions and the span's trace id).
Off: nothing is imported and the app serves without a tracer (``ScoringApp``'s plain path).

This is the one module of the service that may import a cloud SDK (``pyproject.toml``'s
import-linter contract lists it), lazily: the exporter is configuration, not a dependency
of the service's logic, and the image ships without it unless telemetry is wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

logger = logging.getLogger("scoring")

SERVICE_NAME = "scoring"


class RequestTracer:
    """Makes one server span per request (OpenTelemetry's HTTP semantic conventions).

    Args:
        tracer: An OpenTelemetry tracer.
    """

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry.trace import SpanKind, StatusCode

        self._tracer = tracer
        self._server = SpanKind.SERVER
        self._error = StatusCode.ERROR

    @contextmanager
    def request(self, method: str, path: str) -> Iterator[Any]:
        """A current span around one request, named ``METHOD path``."""
        attributes = {"http.request.method": method, "url.path": path}
        with self._tracer.start_as_current_span(
            f"{method} {path}", kind=self._server, attributes=attributes
        ) as span:
            yield span

    def finish(self, span: Any, request_id: str, status: int, rows: int | None) -> None:
        """Record the request id, the status and the rows on the request's span."""
        span.set_attribute("mlops.request_id", request_id)
        span.set_attribute("http.response.status_code", status)
        if rows is not None:
            span.set_attribute("mlops.rows", rows)
        if status >= 500:
            span.set_status(self._error)


def configure(connection_string: str | None, role: str, instance: str) -> RequestTracer | None:
    """Export traces and logs to Application Insights; returns the service's tracer.

    Args:
        connection_string: The Application Insights connection string (None or empty: off).
        role: The cloud role name (Application Map), e.g. ``scoring-production``.
        instance: This replica's name (e.g. its port or host name).

    Returns:
        What makes the request spans, or None when telemetry is off or the
        exporter is not installed (then a warning says so and the service serves anyway).
    """
    if not connection_string:
        return None
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
    except ImportError as exc:
        logger.warning(
            "telemetry is configured but its exporter is not installed (%s): an image has it "
            "only if built with MLOPS_APPINSIGHTS_CONNECTION_STRING set",
            exc,
        )
        return None
    resource = Resource.create(
        {"service.name": role, "service.namespace": "mlops", "service.instance.id": instance}
    )
    configure_azure_monitor(
        connection_string=connection_string,
        resource=resource,
        logger_name=SERVICE_NAME,  # the service's own records, not every library's
        enable_live_metrics=False,
        enable_performance_counters=False,
        # Only what the service does; its raw ASGI app is traced by ScoringApp itself.
        instrumentation_options={
            name: {"enabled": False}
            for name in ("django", "fastapi", "flask", "psycopg2", "requests", "urllib3")
        },
    )
    return RequestTracer(trace.get_tracer(SERVICE_NAME))
