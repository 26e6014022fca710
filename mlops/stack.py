"""The local stack: which services run on this machine for the local profile, and how."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mlops.services import ManagedProcess, ServiceError, http_ok
from mlops.settings import Settings
from mlops.version import REPO_ROOT

AZURITE_BIN = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"


def prefect_env(settings: Settings) -> dict[str, str]:
    """Environment for every Prefect client and server process of this project."""
    return {
        "PREFECT_API_URL": settings.prefect_api_url,
        "PREFECT_HOME": str(settings.state_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_URL": settings.prefect_ui_url,
        "DO_NOT_TRACK": "1",
    }


def prefect_server(settings: Settings) -> ManagedProcess:
    prefect = Path(sys.executable).with_name("prefect")
    return ManagedProcess(
        name="prefect-server",
        argv=[
            str(prefect),
            "server",
            "start",
            "--host",
            settings.prefect_host,
            "--port",
            str(settings.prefect_port),
        ],
        run_dir=settings.run_path,
        ready=lambda: http_ok(f"{settings.prefect_api_url}/health"),
        env=prefect_env(settings),
    )


def azurite(settings: Settings) -> ManagedProcess:
    binary = str(AZURITE_BIN) if AZURITE_BIN.exists() else shutil.which("azurite-blob")
    if binary is None:
        raise ServiceError("Azurite is not installed: run `make setup`")
    data = settings.state_path / "azurite"
    data.mkdir(parents=True, exist_ok=True)
    base = f"http://{settings.azurite_host}:{settings.azurite_port}"
    return ManagedProcess(
        name="azurite",
        argv=[
            binary,
            "--blobHost",
            settings.azurite_host,
            "--blobPort",
            str(settings.azurite_port),
            "--location",
            str(data),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
        ],
        run_dir=settings.run_path,
        # Any HTTP answer means it listens; Azurite answers 400 on the bare account URL.
        ready=lambda: _answers(f"{base}/devstoreaccount1?comp=list"),
    )


def services(settings: Settings) -> list[ManagedProcess]:
    """The services of the local profile, in start order."""
    return [azurite(settings), prefect_server(settings)]


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True
