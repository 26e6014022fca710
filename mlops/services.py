"""Local background services (Prefect server, Azurite, ...) started and stopped by PID file.

A service is a command, a readiness probe and a folder for its PID file and log. ``start`` is
idempotent (a running service is left alone) and a stale PID file (process gone, or the PID
reused by an unrelated program) is cleaned up rather than trusted.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service would not start or stop; the message says why and where its log is."""


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


@dataclass
class ManagedProcess:
    """One background process owned by the project."""

    name: str
    argv: list[str]
    run_dir: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """PID of the running service, or None (removing a stale PID file)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _alive(pid) and self._is_ours(pid):
            return pid
        logger.info("%s: removing stale PID file (pid %s is not ours)", self.name, pid)
        self.pid_file.unlink(missing_ok=True)
        return None

    def _is_ours(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        exe = Path(self.argv[0]).name.encode()
        return any(Path(part.decode(errors="replace")).name.encode() == exe for part in cmdline)

    def start(self, timeout: float = 60.0) -> int:
        """Start the service unless it already runs; wait until it is ready."""
        pid = self.pid()
        if pid is not None:
            if self.ready():
                return pid
            return self._wait_ready(pid, timeout)
        if self.ready():
            raise ServiceError(
                f"{self.name}: something else already answers on its port; stop it or change "
                "the port in settings"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                start_new_session=True,  # survives the CLI; stopped by PID
            )
        self.pid_file.write_text(str(proc.pid))
        return self._wait_ready(proc.pid, timeout)

    def _wait_ready(self, pid: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return pid
            if not _alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(f"{self.name} exited while starting:\n{self.log_tail()}")
            time.sleep(0.25)
        raise ServiceError(
            f"{self.name} not ready after {timeout:.0f} s (log: {self.log_file}):\n"
            + self.log_tail()
        )

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the service (its whole process group); True if it was running."""
        pid = self.pid()
        if pid is None:
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if not _alive(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False
