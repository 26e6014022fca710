"""Network helpers shared by the tests."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_given: set[int] = set()  # every port handed out in this process: never handed out twice
_lock = threading.Lock()
_LOWEST = 20000


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default otherwise)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, for a service a test starts later.

    Two things can take a port between this call and the service's bind: another call of
    this function (the kernel happily hands the same free port out twice), and a client's
    outgoing connection, whose local port comes from the kernel's ephemeral range. So the
    port is never one given before in this session, and is below the ephemeral range.
    """
    low, _ = _ephemeral_range()
    with _lock:
        for _ in range(1000):
            if low - 1 > _LOWEST:
                port = random.randint(_LOWEST, low - 1)
            else:  # an unusual kernel range: let the kernel choose
                with socket.socket() as s:
                    s.bind((host, 0))
                    port = int(s.getsockname()[1])
            if port not in _given and _bindable(host, port):
                _given.add(port)
                return port
    raise RuntimeError("no free TCP port found")
