"""Publish the flow deployments of ``prefect.yaml`` to a Prefect server (what CI does too)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from core.settings import Settings
from core.version import REPO_ROOT, code_version

logger = logging.getLogger(__name__)

WORK_POOL = "mlops-local"
WATCHER_DEPLOYMENT = "blob-watcher/blob-watcher"
# Versioned base job template of the pool (the process worker's defaults for every run).
WORK_POOL_TEMPLATE = REPO_ROOT / "deployments" / "work-pools" / f"{WORK_POOL}.json"


class DeployError(RuntimeError):
    """A ``prefect`` command failed; the message carries its output."""


def prefect_env(settings: Settings) -> dict[str, str]:
    """Environment for every Prefect client and server process of this project."""
    return {
        "PREFECT_API_URL": settings.prefect_api_url,
        "PREFECT_HOME": str(settings.state_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_URL": settings.prefect_ui_url,
        "DO_NOT_TRACK": "1",
    }


def deploy_env(settings: Settings) -> dict[str, str]:
    """Variables ``prefect.yaml`` reads when it is published."""
    return {
        **prefect_env(settings),
        "MLOPS_PROJECT_DIR": str(REPO_ROOT),
        "MLOPS_CODE_VERSION": code_version(),
        "MLOPS_LANDING_CONTAINER": settings.landing_container,
    }


def _prefect(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    prefect = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.run(
        [prefect, "--no-prompt", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise DeployError(
            f"prefect {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc.stdout


def ensure_work_pool(env: dict[str, str]) -> None:
    """Create the process work pool, or bring its base job template up to date (idempotent)."""
    template = str(WORK_POOL_TEMPLATE)
    try:
        _prefect(["work-pool", "inspect", WORK_POOL], env, timeout=60)
    except DeployError:
        _prefect(
            [
                "work-pool",
                "create",
                WORK_POOL,
                "--type",
                "process",
                "--base-job-template",
                template,
            ],
            env,
            timeout=60,
        )
    else:
        _prefect(["work-pool", "update", WORK_POOL, "--base-job-template", template], env, 60)


def publish(settings: Settings) -> str:
    """Create the work pool and publish every deployment; returns prefect's output."""
    env = deploy_env(settings)
    ensure_work_pool(env)
    out = _prefect(["deploy", "--all"], env)
    configure_watcher(settings)
    logger.info("published deployments to %s", settings.prefect_api_url)
    return out


def configure_watcher(settings: Settings) -> dict[str, object]:
    """Give the published blob-watcher deployment the poll interval of ``settings``.

    Set through the API after ``prefect deploy``, not templated in ``prefect.yaml``: that
    command validates the file before it fills ``{{ $VAR }}`` (a templated number failed it).
    A watcher run started without the parameter reads the same setting from its environment.

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
