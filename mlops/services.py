"""Local background services (Prefect server, Azurite, ...) started and stopped by PID file.

The implementation is ``backends.local.managed.ManagedProcess`` (shared with the tests'
Azurite and built on the same process helpers as the scoring targets); this module keeps the
names the CLI uses and the HTTP readiness probe.
"""

from __future__ import annotations

import urllib.request

from backends.local.managed import ManagedProcess, ServiceError

__all__ = ["ManagedProcess", "ServiceError", "http_ok"]


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False
