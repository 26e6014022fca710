"""Fixtures for running the real flows in the test process on in-memory backends.

Shared by the flow unit tests (tests/unit/flows) and the fault-injection suite
(tests/faults/flows); each conftest imports the fixtures it wants. No Azurite, no Docker,
no scoring process: the data lake lives in a dict, training runs the real training command
in this process, the registry is the local one in a temporary folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prefect import task
from prefect.cache_policies import NONE
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_TO_API_ENABLED,
    temporary_settings,
)
from prefect.settings.legacy import Setting

from backends import Backends
from backends.local.memory import InMemoryDataLake
from backends.local.memory_compute import InProcessCompute
from backends.local.registry import LocalModelRegistry
from core.interfaces import Endpoint
from core.settings import Settings, get_settings
from core.smoke import SmokeCheck, SmokeReport
from expectations.gx_runner import ValidationSession
from expectations.report import ValidationReport
from training import data as tdata


def smoke_report(endpoint: Endpoint, version: str, checks: list[SmokeCheck]) -> SmokeReport:
    """The report a stand-in probe returns: passed when every check passed."""
    return SmokeReport(
        endpoint_url=endpoint.url,
        environment=endpoint.environment,
        model_version=version,
        passed=all(check.passed for check in checks),
        checks=checks,
    )


@task(name="validate-data", cache_policy=NONE)
def fast_validation(
    path: Path,
    file: str,
    docs_dir: Path,
    suite_path: Path | None = None,
    session: ValidationSession | None = None,
) -> ValidationReport:
    """Stands in for the Great Expectations run (seconds per file) where the lake is under
    test, not validation: files named ``bad-*`` fail, every other one passes."""
    if Path(file).name.startswith("bad-"):
        return ValidationReport(success=False, suite="s", file=file, rows=None, error="bad")
    frame = tdata.load_dataset(path, file)
    return ValidationReport(success=True, suite="s", file=file, rows=len(frame))


# ``release_to(target, smoke_requests=..., **env)`` (tests/integration/flows/conftest.py).
ReleaseSettings = Callable[..., Settings]


@contextmanager
def prefect_on(flows_api: str, logs_to_api: bool = True) -> Iterator[None]:
    """Point the client at ``flows_api`` (tests/conftest.py: an API-only server), with no
    flow-run heartbeats (they let a worker's server notice a crashed run; in the test
    process, stopping the heartbeat thread costs up to 1 s a run); ``logs_to_api=False``:
    run logs stay in this process (for tests that read none back from the server)."""
    updates: dict[Setting, Any] = {
        PREFECT_API_URL: flows_api,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_LOGGING_TO_API_ENABLED: logs_to_api,
    }
    with temporary_settings(updates=updates):
        yield
        # The events and log workers are process-wide and keep the API URL they started
        # with: left running, they would send a later test's events (automations, triggers)
        # to this server instead of that test's. Flush and stop them here.
        EventsWorker.drain_all(timeout=10)
        APILogWorker.drain_all(timeout=10)


@pytest.fixture(autouse=True)
def flows_prefect(flows_api: str) -> Iterator[None]:
    """``prefect_on(flows_api)`` for each test."""
    with prefect_on(flows_api):
        yield


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def backends(settings: Settings, tmp_path: Path) -> Backends:
    datalake = InMemoryDataLake()
    return Backends(
        datalake=datalake,
        compute=InProcessCompute(datalake, tmp_path / "jobs"),
        registry=LocalModelRegistry(tmp_path / "registry"),
    )


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flows' tasks retry as configured, without the delays (an injected fault would
    otherwise cost seconds per retry)."""
    from prefect import Task

    import flows.release
    import flows.retraining

    for module in (flows.retraining, flows.release):
        for name, value in vars(module).items():
            if isinstance(value, Task):
                monkeypatch.setattr(module, name, value.with_options(retry_delay_seconds=0))
