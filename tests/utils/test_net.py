"""free_port: distinct ports, outside the range outgoing connections use, never one in use."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest

from tests.utils import net


def test_ports_are_distinct_and_below_the_ephemeral_range() -> None:
    low, _ = net._ephemeral_range()
    ports = [net.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    if low - 1 > net._LOWEST:
        assert all(net._LOWEST <= p < low for p in ports)


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        spare = net.free_port()
        net._given.discard(spare)  # let it be handed out again, after the busy one
        picks: Iterator[int] = iter([taken, spare])
        monkeypatch.setattr(net, "_ephemeral_range", lambda: (65000, 65535))
        monkeypatch.setattr(random, "randint", lambda a, b: next(picks))
        assert net.free_port() == spare
