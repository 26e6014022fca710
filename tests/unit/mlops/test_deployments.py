"""`mlops deploy`: the watcher's poll interval reaches its deployment on a real Prefect server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.settings import PREFECT_API_URL, temporary_settings

from core.settings import Settings, load_settings
from mlops.deployments import WATCHER_DEPLOYMENT, configure_watcher

ROOT = Path(__file__).resolve().parents[3]
WATCHER = next(
    d
    for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    if d["name"] == "blob-watcher"
)


@pytest.fixture
def published(flows_api: str) -> str:
    """The blob-watcher deployment as ``prefect deploy`` leaves it (prefect.yaml's parameters
    and schedule) on an API-only server; returns the API URL."""
    flow_name, _, name = WATCHER_DEPLOYMENT.partition("/")
    with temporary_settings(updates={PREFECT_API_URL: flows_api}):
        with get_client(sync_client=True) as client:
            flow_id = client.create_flow_from_name(flow_name)
            client.create_deployment(
                flow_id,
                name,
                parameters=WATCHER["parameters"],
                schedules=[
                    DeploymentScheduleCreate(
                        schedule=IntervalSchedule(interval=s["interval"]), active=True
                    )
                    for s in WATCHER["schedules"]
                ],
            )
    return flows_api


def settings_for(api_url: str, **overrides: object) -> Settings:
    parts = urlsplit(api_url)
    return load_settings(prefect_host=parts.hostname, prefect_port=parts.port, **overrides)


@pytest.mark.parametrize(("interval", "expected"), [(None, 5.0), (2, 2.0), (3600, 3600.0)])
def test_the_poll_interval_setting_reaches_the_watcher_deployment(
    published: str, interval: int | None, expected: float
) -> None:
    overrides = {} if interval is None else {"watch_interval_seconds": interval}
    stored = configure_watcher(settings_for(published, **overrides))

    assert stored == {**WATCHER["parameters"], "poll_seconds": expected}
    with temporary_settings(updates={PREFECT_API_URL: published}):
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(WATCHER_DEPLOYMENT)
    assert deployment.parameters["poll_seconds"] == expected
    assert deployment.parameters["watch_seconds"] == WATCHER["parameters"]["watch_seconds"]
    # The schedule that restarts the watcher is prefect.yaml's, untouched.
    (schedule,) = deployment.schedules
    assert schedule.schedule.interval.total_seconds() == 60  # type: ignore[union-attr]


def test_each_watching_run_outlasts_the_schedule_interval() -> None:
    """The next run starts before the last one ends: no poll gap between runs."""
    (schedule,) = WATCHER["schedules"]
    assert WATCHER["parameters"]["watch_seconds"] > schedule["interval"]
    assert WATCHER["concurrency_limit"]["limit"] >= 2  # the overlap is allowed to run


def test_the_monitoring_interval_setting_becomes_the_monitoring_schedule(flows_api: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    from mlops.deployments import MONITORING_DEPLOYMENT, configure_monitoring, monitoring_cron

    flow_name, _, name = MONITORING_DEPLOYMENT.partition("/")
    with temporary_settings(updates={PREFECT_API_URL: flows_api}):
        with get_client(sync_client=True) as client:
            client.create_deployment(
                client.create_flow_from_name(flow_name),
                name,
                schedules=[
                    DeploymentScheduleCreate(
                        schedule=CronSchedule(cron="*/10 * * * *"), active=True
                    )
                ],
            )
    assert configure_monitoring(settings_for(flows_api, monitoring_interval_minutes=5)) == (
        "*/5 * * * *"
    )
    with temporary_settings(updates={PREFECT_API_URL: flows_api}):
        with get_client(sync_client=True) as client:
            (schedule,) = client.read_deployment_by_name(MONITORING_DEPLOYMENT).schedules
    assert schedule.schedule.cron == "*/5 * * * *"  # type: ignore[union-attr]
    assert monitoring_cron(120) == "0 */2 * * *" and monitoring_cron(1440) == "0 0 * * *"
