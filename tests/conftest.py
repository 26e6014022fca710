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
- ``azurite`` (session): a real Azurite blob service on a free loopback port, in memory,
  started the first time a test asks for it; skipped when ``azurite-blob`` is not installed.
- ``prefect_server`` starts ONE real Prefect server for the whole session, the first time a
  test asks for it (it takes ~15-20 s), and points the Prefect client at it.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from backends.local.azurite import AzuriteService, find_azurite_binary
from backends.local.dockerd import DockerEngine, DockerEngineError
from core.settings import Settings
from tests.utils.azurite import AzuriteInstance
from tests.utils.figures import ReliabilityFigures
from tests.utils.net import free_port
from tests.utils.prefect_api import ApiOnlyServer

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


@pytest.fixture(scope="session")
def flows_api() -> Iterator[str]:
    """A Prefect API with no background services, for tests that only run flows in this
    process (why: tests/utils/prefect_api.py); started once, the first time it is asked for."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    yield _FLOWS_API.url()
    # Deliver what the runs left queued while the server still answers (otherwise the
    # workers retry a closed port at exit).
    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)
    _FLOWS_API.stop()


STATE = Path(__file__).resolve().parents[1] / ".mlops"
_FLOWS_API = ApiOnlyServer(STATE / "docker" / "cache")
_FLOWS_API_USERS = ("tests/unit/flows", "tests/faults/flows")


def _wants_flows_api(args: list[str]) -> bool:
    """Whether a run of these path arguments may need the flows' API server (no path
    argument: pytest runs ``testpaths``, the whole suite)."""
    root = Path(__file__).resolve().parents[1]
    given = [Path(arg.split("::")[0]) for arg in args if not arg.startswith("-")]
    paths = [str(path.resolve()) for path in given if path.exists()] or [str(root / "tests")]
    wanted = [str(root / user) for user in _FLOWS_API_USERS]
    return any(w.startswith(p) or p.startswith(w) for p in paths for w in wanted)


# Started here, while pytest is still importing the conftests below this one (the flows'
# conftest imports Prefect, the flows and scikit-learn: seconds), so the server's own
# seconds of imports run beside them on the second core. The command line is all there is
# to go by this early; pytest_sessionstart checks the parsed arguments too. Only when pytest
# runs (``pytest`` or ``python -m pytest``), not when a script imports this module; and
# stopped at exit whatever happens (pytest_sessionfinish stops it first on a normal end).
if "pytest" in Path(sys.argv[0]).parts[-2:] and _wants_flows_api(sys.argv[1:]):
    _FLOWS_API.start()
    atexit.register(_FLOWS_API.stop)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the flows' API server now, while pytest collects, when the run may need it."""
    if _wants_flows_api(list(session.config.args)):
        _FLOWS_API.start()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInstance]:
    """Azurite (in memory) on a free port for the whole session (integration tests, the
    fault suite's kill tests)."""
    if find_azurite_binary() is None:
        pytest.skip("node or azurite-blob is not installed: run `make setup`")
    host, port = "127.0.0.1", free_port()
    log_file = tmp_path_factory.mktemp("azurite") / "azurite.log"
    service = AzuriteService(port, None, log_file, host=host)
    service.start(timeout=60)
    try:
        settings = Settings(azurite_host=host, azurite_port=port, blob_connection_string=None)
        yield AzuriteInstance(host, port, settings.blob_connection, service)
    finally:
        service.stop()


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


TIERS = ("utils", "unit", "integration", "faults", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first: unit, then integration against the real local services, then the
    fault-injection suite, then the end-to-end loop (pytest would otherwise go by folder
    name, e2e first)."""

    def tier(item: pytest.Item) -> int:
        parts = item.path.relative_to(Path(__file__).parent).parts
        return TIERS.index(parts[0]) if parts[0] in TIERS else len(TIERS)

    items.sort(key=tier)  # stable: the order within a tier is kept


_FIGURES = ReliabilityFigures()


@pytest.fixture(scope="session")
def reliability_figures() -> ReliabilityFigures:
    """Counts the fault-injection tests add up (tests/utils/figures.py)."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES.sources:
        terminalreporter.write_line(_FIGURES.line())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session folder (Prefect home, project state) goes with the session."""
    import shutil

    _FLOWS_API.stop()
    shutil.rmtree(_SESSION_ROOT, ignore_errors=True)
