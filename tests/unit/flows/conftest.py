"""Flow unit tests: the real flows on in-memory backends, through the session's Prefect server.

No Azurite, no Docker, no scoring process: the data lake lives in a dict, training runs the
real training command in this process, the registry is the local one in a temporary folder,
and releases go to an in-memory target checked by a scripted probe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from backends import Backends
from backends.local.memory import InMemoryDataLake
from backends.local.memory_compute import InProcessCompute
from backends.local.registry import LocalModelRegistry
from core.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _no_heartbeats() -> Iterator[None]:
    """Flow-run heartbeats let a worker's server notice a crashed run; these flows run in the
    test process, where stopping the heartbeat thread costs up to 1 s per run (its sleep)."""
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture
def settings(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
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


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retraining flow's tasks retry as configured, without the delays (injected faults
    would otherwise cost seconds per retry)."""
    from prefect import Task

    import flows.retraining as module

    for name, value in vars(module).items():
        if isinstance(value, Task):
            monkeypatch.setattr(module, name, value.with_options(retry_delay_seconds=0))
