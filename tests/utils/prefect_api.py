"""A Prefect API server with no background services, for tests that only run flows.

Why not the session's ``prefect_server`` (Prefect's test harness, every service on): with
SQLite, a service writing in the background (the task-run recorder, the event persister)
makes a request that reads then writes fail with "database is locked"; the server answers
503 and the client waits ~2 s before retrying. Flow unit tests create a flow run every
second and met that wait on most runs (~30 s of 503 back-off over 16 tests). Flows run the
same without the services (``prefect server start --no-services`` is Prefect's own "API
only" mode); what needs them (automations, triggers) is tested against the full server.

The database is copied from a template migrated once per Prefect version and kept in the
project's cache (``.mlops/cache``): a fresh database costs ~11 s of migrations per start.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

import httpx

from tests.utils.net import free_port

STARTUP_TIMEOUT = 120.0
PREFECT = (sys.executable, "-m", "prefect")


def _env(home: Path, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{database}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    return env


def _server_env(home: Path, database: Path) -> dict[str, str]:
    """``_env`` for a server on a copy of the template: migrated already, and no test uses
    a block, so neither step runs again at each start (~2 s of the server's start-up)."""
    env = _env(home, database)
    env.update(
        PREFECT_API_DATABASE_MIGRATE_ON_START="false",
        PREFECT_API_BLOCKS_REGISTER_ON_START="false",
    )
    return env


def template_database(cache_dir: Path) -> Path:
    """The migrated, empty database for this Prefect version (made on first use)."""
    # The installed version without importing Prefect (seconds; the server may start early).
    template = cache_dir / f"prefect-{version('prefect')}.db"
    if template.exists():
        return template
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        database = Path(tmp) / "prefect.db"
        subprocess.run(
            [*PREFECT, "server", "database", "upgrade", "-y"],
            env=_env(Path(tmp), database),
            check=True,
            capture_output=True,
            timeout=STARTUP_TIMEOUT,
        )
        # One file: fold the write-ahead log in before copying it anywhere.
        with closing(sqlite3.connect(database)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA journal_mode=DELETE")
        os.replace(database, template)  # atomic: a concurrent session sees all or nothing
    return template


class ApiOnlyServer:
    """``prefect server start --no-services`` on a free port, started without waiting (so
    its ~10 s of imports overlap the test session's own collection), waited for on use."""

    def __init__(self, cache_dir: Path, env: dict[str, str] | None = None) -> None:
        self.cache_dir = cache_dir
        self.env = env or {}  # more server settings, e.g. PREFECT_SERVER_API_AUTH_STRING
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._url = ""
        self._ready = False

    def start(self) -> None:
        if self._process is not None:
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="prefect-api-")
        home = Path(self._tmp.name)
        database = home / "prefect.db"
        shutil.copyfile(template_database(self.cache_dir), database)
        port = free_port()
        with (home / "server.log").open("wb") as log:
            self._process = subprocess.Popen(
                [*PREFECT, "server", "start", "--no-services", "--host", "127.0.0.1"]
                + ["--port", str(port)],
                env={**_server_env(home, database), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._url = f"http://127.0.0.1:{port}/api"

    def url(self) -> str:
        """Start if need be, wait until the API answers, return its URL."""
        self.start()
        assert self._process is not None and self._tmp is not None
        if not self._ready:
            _wait_healthy(self._url, self._process, Path(self._tmp.name) / "server.log")
            self._ready = True
        return self._url

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    # One client for every poll: a new one loads the CA bundle (~30 ms of CPU each time, taken
    # from the server's start-up on a 2-core machine).
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the Prefect API server exited: {log.read_text()[-2000:]}")
            try:
                # 401: a server with an auth string answers, just not to us.
                if client.get(f"{url}/health").status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the Prefect API server did not answer in {STARTUP_TIMEOUT:.0f} s")
