"""What ``mlops deploy`` sets on the published deployments through the API, after
``prefect deploy``: values from settings that ``prefect.yaml`` cannot carry.

``prefect deploy`` validates the file (schedules, parameters) before it fills ``{{ $VAR }}``
templates, so a templated number there fails it (it did: commit f10a099). A value from
settings is written to the deployment once it exists instead.
"""

from __future__ import annotations

import logging

from core.settings import Settings

logger = logging.getLogger(__name__)

WATCHER_DEPLOYMENT = "blob-watcher/blob-watcher"


def configure_watcher(settings: Settings) -> dict[str, object]:
    """Give the published blob-watcher deployment the poll interval of ``settings``
    (parameter ``poll_seconds``; a watcher run started without it reads the same setting
    from its environment).

    Returns:
        The deployment's parameters as now stored.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}),
        get_client(sync_client=True) as client,
    ):
        deployment = client.read_deployment_by_name(WATCHER_DEPLOYMENT)
        parameters = {**deployment.parameters, "poll_seconds": settings.watch_interval_seconds}
        client.update_deployment(deployment.id, DeploymentUpdate(parameters=parameters))
        stored: dict[str, object] = client.read_deployment(deployment.id).parameters
    logger.info("%s polls every %g s", WATCHER_DEPLOYMENT, settings.watch_interval_seconds)
    return stored


MONITORING_DEPLOYMENT = "monitoring/monitoring"


def configure_monitoring(settings: Settings) -> str:
    """Give the published monitoring deployment a cron schedule every
    ``monitoring_interval_minutes`` (prefect.yaml's says every 10 minutes).

    Returns:
        The cron expression now stored.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cron = monitoring_cron(settings.monitoring_interval_minutes)
    with (
        temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}),
        get_client(sync_client=True) as client,
    ):
        deployment = client.read_deployment_by_name(MONITORING_DEPLOYMENT)
        for schedule in client.read_deployment_schedules(deployment.id):
            client.update_deployment_schedule(
                deployment.id, schedule.id, schedule=CronSchedule(cron=cron, timezone="UTC")
            )
    logger.info("%s runs on %r", MONITORING_DEPLOYMENT, cron)
    return cron


def monitoring_cron(minutes: int) -> str:
    """A cron expression for every ``minutes`` (whole hours past 59 minutes)."""
    if minutes < 60:
        return f"*/{minutes} * * * *"
    hours = max(minutes // 60, 1)
    return f"0 */{hours} * * *" if hours < 24 else "0 0 * * *"
