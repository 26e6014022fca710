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
    logger.info("published deployments to %s", settings.prefect_api_url)
    return out
