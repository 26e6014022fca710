"""AzuriteService: a second, persistent instance next to the session's in-memory one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends.blob_datalake import BlobDataLake
from backends.local._proc import pid_alive
from backends.local.azurite import AzuriteService
from core.interfaces import BackendError
from core.settings import Settings
from tests.utils.net import free_port

pytestmark = pytest.mark.integration


def test_persistent_instance_keeps_blobs_across_restarts(tmp_path: Path, azurite: Any) -> None:
    port = free_port()
    service = AzuriteService(port, tmp_path / "data", tmp_path / "run" / "azurite.log")
    lake = BlobDataLake(Settings(azurite_port=port).blob_connection)
    try:
        pid = service.start()
        assert service.is_running() and service.pid() == pid
        assert service.start() == pid  # already running: same process
        assert (tmp_path / "run" / "azurite.pid").read_text().strip() == str(pid)
        lake.ensure_containers("landing")
        lake.put("landing", "kept.csv", b"1")

        service.stop()
        assert not service.is_running() and not pid_alive(pid)
        assert not (tmp_path / "run" / "azurite.pid").exists()

        # A new object (as a later `mlops up` would build) finds the data again.
        again = AzuriteService(port, tmp_path / "data", tmp_path / "run" / "azurite.log")
        again.start()
        assert lake.get("landing", "kept.csv")[0] == b"1"
    finally:
        service.stop()
    assert "successfully listens" in (tmp_path / "run" / "azurite.log").read_text()


def test_port_of_a_running_azurite_is_taken(tmp_path: Path, azurite: Any) -> None:
    other = AzuriteService(azurite.port, None, tmp_path / "azurite.log")
    with pytest.raises(BackendError, match="already in use"):
        other.start()
    assert azurite.service.is_running()
