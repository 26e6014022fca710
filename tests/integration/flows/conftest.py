"""Fixtures for flow tests: a real Prefect server, a real Azurite, fresh containers and state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import get_release_backends
from core.settings import Settings, get_settings
from tests.utils.flow_harness import ReleaseSettings
from tests.utils.net import free_port


@pytest.fixture
def settings(
    prefect_server: str, azurite_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings of an isolated project: own containers in the session's Azurite, own registry."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_AZURITE_PORT", str(azurite_port))
    for kind in ("landing", "curated", "quarantine"):
        monkeypatch.setenv(f"MLOPS_{kind.upper()}_CONTAINER", f"{prefix}-{kind}")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def release_to(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReleaseSettings]:
    """``release_to(target, smoke_requests=40, **env)``: the settings, releasing to that target
    ("process" or "docker") on free QA/production ports; both environments are torn down
    after the test."""
    made: list[Settings] = []

    def make(target: str = "process", *, smoke_requests: int = 40, **env: str) -> Settings:
        monkeypatch.setenv("MLOPS_RELEASE_TARGET", target)
        monkeypatch.setenv("MLOPS_QA_PORT", str(free_port()))
        monkeypatch.setenv("MLOPS_PRODUCTION_PORT", str(free_port()))
        monkeypatch.setenv("MLOPS_SMOKE_REQUESTS", str(smoke_requests))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        made.append(get_settings())
        return made[-1]

    yield make
    for current in made:
        target = get_release_backends(current).target
        for env in ("qa", "production"):
            target.teardown(env)
    get_settings.cache_clear()
