"""Fixtures for flow tests: a real Prefect server, a real Azurite, fresh containers and state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, get_settings


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
