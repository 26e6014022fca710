"""Traces and logs of the flows to Application Insights, when a connection string is set
(``MLOPS_APPINSIGHTS_CONNECTION_STRING``); off otherwise: nothing is imported or started.

A flow run configures it when it resolves its resources (``flows.resources``), once per
process. Exported then: the ``prefect`` loggers' records (a run's logger adds its
``flow_run_id`` or ``task_run_id``, which become custom dimensions, so a run's logs are
found by its id), the spans Prefect makes for task runs (attribute ``prefect.run.id``), and
the Azure SDK's calls (blob, Azure ML) as dependencies of them.
"""

from __future__ import annotations

import logging

from core.settings import Settings

logger = logging.getLogger(__name__)
LOGGER = "prefect"  # the run loggers' parent (Prefect's loggers do not propagate to root)


def configure_telemetry(settings: Settings, role: str = "flows") -> bool:
    """Start exporting to Application Insights if a connection string is set.

    Args:
        settings: The project settings (``appinsights_connection_string``).
        role: The cloud role name shown in Application Insights.

    Returns:
        Whether telemetry is on in this process (also when an earlier call turned it on).
    """
    secret = settings.appinsights_connection_string
    if secret is None or not secret.get_secret_value():
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True  # configured already: OpenTelemetry's providers are set once a process
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.sdk.resources import Resource

    configure_azure_monitor(
        connection_string=secret.get_secret_value(),
        resource=Resource.create({"service.name": role, "service.namespace": "mlops"}),
        logger_name=LOGGER,
        enable_live_metrics=False,
        enable_performance_counters=False,
    )
    logger.info("telemetry: traces and logs go to Application Insights (role %s)", role)
    return True
