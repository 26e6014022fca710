"""Long-lived local services known by a PID file: Azurite, the Prefect server.

One command starts a service (``mlops up``, a test fixture) and another stops it (``mlops
down``), so a service is found again through ``<run_dir>/<name>.pid`` (its output goes to
``<name>.log`` beside it). Spawning, liveness and signalling are ``daemons``' (a session of its
own, a small environment, SIGTERM then SIGKILL to the process group); this module adds what a
service found by PID file needs:

- ``start`` is idempotent: a service that runs is left alone (and waited for if not ready yet).
- A stale PID file (process gone, or the PID now used by an unrelated program) is never
  trusted: the process's command line must be the service's own.
- A port held by another program fails at once, naming the port and the setting that moves it.
- Errors quote the tail of the service's log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from backends.local import daemons
from backends.local._proc import kill_group, pid_alive, port_answers
from core.interfaces import BackendError

logger = logging.getLogger(__name__)


class ServiceError(BackendError):
    """A service would not start or stop; the message says why and quotes its log."""


class ManagedProcess:
    """One background service owned by the project.

    Args:
        name: Names the PID file and log (``<run_dir>/<name>.pid``, ``.log``) and messages.
        argv: Command line. Its program's base name and its arguments identify the process
            later, so a recycled PID is never mistaken for the service (nor signalled).
        run_dir: Folder of the PID file and log (created on demand).
        host: Interface the service listens on.
        port: TCP port the service listens on; another program holding it is an error.
        ready: Whether the service answers; default: its port accepts connections.
        env: Variables added to the small environment ``daemons.spawn`` passes on.
        port_setting: The setting that moves the port (named when the port is taken).
        hint: What to do when the program cannot be run at all (e.g. "run `make setup`").
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        run_dir: Path,
        *,
        host: str,
        port: int,
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        port_setting: str | None = None,
        hint: str = "",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.run_dir = run_dir
        self.host = host
        self.port = port
        self._ready = ready
        self.env = dict(env or {})
        self.port_setting = port_setting
        self.hint = hint

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        """The command line ``start`` runs."""
        return list(self.argv)

    def ready(self) -> bool:
        """Whether the service answers (by default: its port accepts connections)."""
        return self._ready() if self._ready is not None else port_answers(self.host, self.port)

    # ------------------------------------------------------------------ state
    def pid(self) -> int | None:
        """PID of the running service, or None.

        A PID file whose process is gone is removed. One whose PID now runs another command
        line (a recycled PID, or the service started with other settings, e.g. another port)
        is not the service: it is never signalled, and ``start`` overwrites the file.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not daemons.alive({"pid": pid}):
            logger.info("%s: removing stale PID file (pid %s is gone)", self.name, pid)
            self.pid_file.unlink(missing_ok=True)
            return None
        if pid_alive(pid, self._signature()):
            return pid
        logger.warning(
            "%s: pid %s of %s runs another command line: not this service, left alone",
            self.name,
            pid,
            self.pid_file,
        )
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def _signature(self) -> str:
        # What /proc/<pid>/cmdline (NULs read as spaces) contains for this service: an
        # interpreter may come first (`node <script> ...`), the program may be a resolved path.
        return " ".join([Path(self.argv[0]).name, *self.argv[1:]]) + " "

    # ------------------------------------------------------------------ start / stop
    def start(self, timeout: float = 60.0) -> int:
        """Start the service unless it already runs; wait until it is ready.

        Returns:
            The service's PID.

        Raises:
            ServiceError: Its port is held by another program, it cannot be run, it exited
                while starting, or it was not ready within ``timeout`` seconds (then it is
                stopped). The message quotes the log.
        """
        with self._lock():
            pid = self.pid()
            if pid is not None:
                return self._wait_ready(pid, timeout, started=False)
            if port_answers(self.host, self.port):
                where = f" ({self.port_setting})" if self.port_setting else ""
                raise ServiceError(
                    f"{self.name}: port {self.host}:{self.port} is already in use by another "
                    f"program; stop it or choose another port{where}"
                )
            argv = self.command()
            try:
                handle = daemons.spawn(argv, self.env, self.log_file)
            except OSError as exc:
                hint = f"; {self.hint}" if self.hint else ""
                raise ServiceError(f"{self.name}: cannot run {argv[0]}: {exc}{hint}") from None
            pid = int(handle["pid"])
            self.pid_file.write_text(f"{pid}\n")
            logger.info("%s starting on %s:%s (pid %s)", self.name, self.host, self.port, pid)
            return self._wait_ready(pid, timeout, started=True)

    def _wait_ready(self, pid: int, timeout: float, *, started: bool) -> int:
        deadline = time.monotonic() + timeout
        while True:
            if self.ready():
                return pid
            if not daemons.alive({"pid": pid}):
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"{self.name} exited while starting (log {self.log_file}):\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if started:
            self._stop(pid)
        raise ServiceError(
            f"{self.name} not ready on {self.host}:{self.port} after {timeout:g} s "
            f"(log {self.log_file}):\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the service's whole process group: SIGTERM, SIGKILL after ``timeout`` seconds.

        Returns:
            Whether it was running.
        """
        with self._lock():
            pid = self.pid()
            if pid is None:
                return False
            self._stop(pid, timeout)
            return True

    def _stop(self, pid: int, timeout: float = 15.0) -> None:
        daemons.stop({"pid": pid}, timeout)
        # Members of its group may outlive the leader: they got the SIGTERM too.
        if not _wait_group_gone(pid, timeout):
            logger.warning("%s: group %s outlived SIGTERM; killing it", self.name, pid)
            kill_group(pid, signal.SIGKILL)
            _wait_group_gone(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)
        logger.info("%s stopped (pid %s)", self.name, pid)

    def log_tail(self, lines: int = 20) -> str:
        return daemons.log_tail(self.log_file, lines) or "(no log)"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two commands starting (or stopping) one service at once must not both spawn it.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / f"{self.name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp.
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False
