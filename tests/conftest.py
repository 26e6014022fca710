"""Session-wide test set-up.

- Every test session gets its own PREFECT_HOME (the result cache there would otherwise leak
  between runs) and its own project state dir.
- ``docker_host`` (session): a Docker engine that answers. An engine already running (at
  the default socket, or ours under ``.mlops/docker``) is used and left
  running; otherwise ``dockerd`` is started under ``.mlops/docker`` and stopped at the end.
  Skipped, with the reason, only when no engine can run here at all; under CI (``CI`` set)
  that is a failure instead, so a broken engine cannot pass as green. ``docker_client`` is a
  client of it; ``cache_dir`` (``.mlops/docker/cache``) keeps base image and wheelhouses
  between sessions.
- ``prefect_server`` starts ONE real Prefect server for the whole session, the first time a
  test asks for it (it takes ~15-20 s), and points the Prefect client at it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from backends.local.dockerd import DockerEngine, DockerEngineError

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
# Must be set before anything imports prefect (its settings are read at import).
os.environ["PREFECT_HOME"] = str(_SESSION_ROOT / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)
for _key in [k for k in os.environ if k.startswith("MLOPS_")]:
    del os.environ[_key]  # a developer's .env-style exports must not steer the tests
os.environ["MLOPS_STATE_DIR"] = str(_SESSION_ROOT / "state")


@pytest.fixture(scope="session")
def session_root() -> Path:
    return _SESSION_ROOT


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A real Prefect server (SQLite) for the session; yields its API URL."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        yield str(PREFECT_API_URL.value())


STATE = Path(__file__).resolve().parents[1] / ".mlops"


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    engine = DockerEngine(STATE / "docker")
    try:
        host = engine.ensure()
    except DockerEngineError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine: {exc}")
        pytest.skip(f"no Docker engine can run here: {exc}")
    yield host
    if engine.started:
        engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_host, timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return STATE / "docker" / "cache"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session folder (Prefect home, project state) goes with the session."""
    import shutil

    shutil.rmtree(_SESSION_ROOT, ignore_errors=True)
