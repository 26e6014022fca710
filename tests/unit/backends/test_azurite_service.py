"""AzuriteService failures that need no running emulator."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from backends.local.azurite import AzuriteService
from core.interfaces import BackendError
from tests.utils.net import free_port


def test_missing_binary_says_run_make_setup(tmp_path: Path) -> None:
    service = AzuriteService(
        free_port(), None, tmp_path / "azurite.log", binary=tmp_path / "no" / "azurite-blob"
    )
    with pytest.raises(BackendError, match="make setup"):
        service.start(timeout=5)
    assert not service.is_running()


def test_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        service = AzuriteService(busy.getsockname()[1], None, tmp_path / "azurite.log")
        with pytest.raises(BackendError, match="already in use by another program"):
            service.start(timeout=5)


def test_command_line(tmp_path: Path) -> None:
    binary = tmp_path / "azurite-blob"
    in_memory = AzuriteService(10000, None, tmp_path / "a.log", binary=binary).command()
    assert "--inMemoryPersistence" in in_memory and "--location" not in in_memory
    assert {"--skipApiVersionCheck", "--disableTelemetry", "--loose"} <= set(in_memory)
    on_disk = AzuriteService(10000, tmp_path / "data", tmp_path / "a.log", binary=binary)
    args = on_disk.command()
    assert args[args.index("--location") + 1] == str(tmp_path / "data")
    assert "--inMemoryPersistence" not in args


def test_stop_without_start_is_a_no_op(tmp_path: Path) -> None:
    service = AzuriteService(free_port(), None, tmp_path / "azurite.log")
    service.stop()
    assert not service.is_running()
