"""The files that describe one local environment (``state_dir/<environment>/``) and small
helpers around them: the state JSON and the API key (HAProxy's files: ``haproxy``)."""

from __future__ import annotations

import dataclasses
import fcntl
import http.client
import os
import secrets
import shutil
import socket
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backends.local.jsonfile import read_json, write_json_atomic
from core.interfaces import BackendError, ReleaseSpec

HOST = "127.0.0.1"


def read_release(data: dict[str, Any]) -> ReleaseSpec:
    """A ``ReleaseSpec`` from its ``dataclasses.asdict`` form (unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(ReleaseSpec)}
    return ReleaseSpec(**{k: v for k, v in data.items() if k in names})


def free_port(used: Collection[int] = ()) -> int:
    """A loopback TCP port nobody listens on right now, not in ``used``."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in used:
            return port
    raise BackendError("no free loopback port")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET url`` answers 200 (plain http.client: no proxies, no per-request logs)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class EnvFiles:
    """Paths and file operations for one environment.

    Args:
        root: The environment's folder (created 0700 on first write).
        env: Environment name.
        port: Its stable loopback port.
    """

    def __init__(self, root: Path, env: str, port: int) -> None:
        self.dir = root
        self.env = env
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.state = root / "state.json"
        self.key = root / "api_key"
        self.logs = root / "logs"
        # The other secrets replicas read from files: the collected container's SAS URL and
        # the App Insights connection string (process replicas), and the copies of all three
        # a container's user may read (Docker replicas, bind-mounted from ``secrets/``).
        self.collect_url = root / "collect_url"
        self.appinsights = root / "appinsights_connection_string"
        self.secrets = root / "secrets"

    @staticmethod
    def replica_url(port: int) -> str:
        """Base URL of a replica listening on ``port``."""
        return f"http://{HOST}:{port}"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the environment's lock: one deploy, rollback or teardown at a time."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.dir / "lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes, even on a crash
            yield

    def load(self) -> dict[str, Any]:
        """The environment's state (an empty one if it was never deployed)."""
        state = read_json(self.state) or {}
        for name in ("proxy", "current", "previous"):
            state.setdefault(name, None)
        state.setdefault("retiring", [])
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Persist ``state`` (atomically, 0600)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json_atomic(self.state, state)

    def ensure_key(self) -> str:
        """The environment's API key, created on first use (random, file mode 0600).

        The file is written whole before it gets its name (a crash leaves no half key), and
        an empty one, left by an older crash, counts as missing: it would break every deploy.
        """
        key = self._read_key()
        if key:
            return key
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.dir / f".api_key.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.key)  # fails if another process made one meanwhile
            except FileExistsError:
                if not self._read_key():
                    os.replace(tmp, self.key)
        finally:
            tmp.unlink(missing_ok=True)
        key = self._read_key()
        if not key:
            raise BackendError(f"{self.env}: cannot write the API key file {self.key}")
        return key

    def _read_key(self) -> str:
        try:
            return self.key.read_text().strip()
        except FileNotFoundError:
            return ""

    def forget(self) -> None:
        """Delete the state, the key and every other secret file (logs stay, for
        post-mortems): a torn-down environment leaves no credential behind."""
        for path in (self.state, self.key, self.collect_url, self.appinsights):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.secrets, ignore_errors=True)
