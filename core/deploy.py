"""Publish the flow deployments of ``prefect.yaml`` to a Prefect server (what CI does too)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.settings import Settings
from core.version import REPO_ROOT, code_version
from core.work_pools import ACI_POOL, POOL_TYPES, WorkPoolError, pool_template, prefect_file

logger = logging.getLogger(__name__)

WORK_POOL = "mlops-local"
# Versioned base job template of the pool (the process worker's defaults for every run).
WORK_POOL_TEMPLATE = REPO_ROOT / "deployments" / "work-pools" / f"{WORK_POOL}.json"


class DeployError(RuntimeError):
    """A ``prefect`` command failed; the message carries its output."""


def prefect_env(settings: Settings) -> dict[str, str]:
    """Environment for every Prefect client process of this project: the settings' API
    (``MLOPS_PREFECT_API_URL`` when set, else the local server)."""
    env = {
        "PREFECT_API_URL": settings.prefect_api_url,
        "PREFECT_HOME": str(settings.state_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    if settings.prefect_api_is_local:
        env["PREFECT_UI_URL"] = settings.prefect_ui_url
    # else Prefect derives the UI's URL from the API's itself (Prefect Cloud's is another host).
    return env


def server_env(settings: Settings) -> dict[str, str]:
    """Environment of the local server ``mlops up`` starts: its UI talks to itself, even when
    the clients use another API."""
    return {
        **prefect_env(settings),
        "PREFECT_API_URL": settings.local_prefect_api_url,
        "PREFECT_UI_URL": settings.local_prefect_api_url.removesuffix("/api"),
    }


def deploy_env(settings: Settings) -> dict[str, str]:
    """Variables ``prefect.yaml`` reads when it is published."""
    return {
        **prefect_env(settings),
        "MLOPS_PROJECT_DIR": str(REPO_ROOT),
        "MLOPS_CODE_VERSION": code_version(),
        "MLOPS_LANDING_CONTAINER": settings.landing_container,
        # Where the ACI choice pushes the flow code: one folder per commit, so a run started
        # before a later publish still pulls the code it was published with.
        "MLOPS_CODE_CONTAINER": settings.code_container,
        "MLOPS_CODE_FOLDER": f"prefect-mlops/{code_version()}",
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


def ensure_work_pool(
    env: dict[str, str], pool: str = WORK_POOL, template: Path = WORK_POOL_TEMPLATE
) -> None:
    """Create the work pool, or bring its base job template up to date (idempotent)."""
    try:
        _prefect(["work-pool", "inspect", pool], env, timeout=60)
    except DeployError:
        create = ["work-pool", "create", pool, "--type", POOL_TYPES[pool]]
        _prefect([*create, "--base-job-template", str(template)], env, timeout=60)
    else:
        _prefect(["work-pool", "update", pool, "--base-job-template", str(template)], env, 60)


def publish(
    settings: Settings,
    code_storage: Callable[[Settings], object] | None = None,
    *,
    api_key: str | None = None,
    timeout: float = 300,
) -> str:
    """Create the settings' work pool and publish every deployment to it, on the settings'
    Prefect API; returns prefect's output. What ``mlops deploy`` and CI's build validation run.

    Args:
        settings: The work pool (``MLOPS_WORK_POOL``) and the API (``prefect_api_url``).
        code_storage: Saves the block the ACI choice's push/pull steps read
            (``backends.azure.code_storage.save_code_storage``); the local choice needs none.
        api_key: The API's key, for a ``prefect`` that does not find it in the environment.
        timeout: Seconds allowed to ``prefect deploy``.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = deploy_env(settings)
    if api_key is not None:
        env["PREFECT_API_KEY"] = api_key
    pool = settings.work_pool
    try:
        template = pool_template(settings, pool)
    except WorkPoolError as exc:
        raise DeployError(str(exc)) from None
    if pool == ACI_POOL:
        if code_storage is None:
            raise DeployError(f"work pool {pool} needs a code storage block: none was given")
        # The block goes where the deployments go, whatever this process's client points at.
        with temporary_settings({PREFECT_API_URL: settings.prefect_api_url}):
            code_storage(settings)
    with tempfile.TemporaryDirectory(prefix="mlops-pool-") as tmp:
        path = Path(tmp) / f"{pool}.json"
        path.write_text(json.dumps(template), encoding="utf-8")
        ensure_work_pool(env, pool, path)
    spec = prefect_file(settings)
    out = _prefect(["deploy", "--all", "--prefect-file", str(spec)], env, timeout)
    logger.info("published deployments to work pool %s at %s", pool, settings.prefect_api_url)
    return out
