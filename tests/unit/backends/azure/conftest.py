"""The Azure unit tests' fixtures: a fake Azure ML workspace at the HTTP boundary
(tests/utils/azure_ml_workspace.py), bare recording transports, and no network at all.

Sockets are blocked, so a client that bypassed its transport fails the test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.utils.azure_http import FakeCredential, RecordingTransport
from tests.utils.azure_ml_workspace import FakeWorkspace, fake_workspace


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt (a client that bypassed the transport) fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def aml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorkspace]:
    """A real ``MLClient`` on a ``RecordingTransport`` and a ``FakeBlobStore``."""
    workspace = fake_workspace(monkeypatch)
    yield workspace
    assert not workspace.transport.unexpected, (
        f"unrouted requests: {workspace.transport.unexpected}"
    )


@pytest.fixture
def transport() -> Iterator[RecordingTransport]:
    """A bare recording transport, for management clients other than ``MLClient``."""
    recording = RecordingTransport()
    yield recording
    assert not recording.unexpected, f"unrouted requests: {recording.unexpected}"


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()
