"""Run Azurite's blob service (the Azure Storage emulator) as a background process.

The process outlives the Python process that started it (``mlops up`` starts it, a later
``mlops down`` stops it), so its PID is kept in a file next to its log, not in memory.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import time
from pathlib import Path

from backends.base import BackendError
from backends.local._proc import pid_alive, port_answers, reap, signal_group

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_BINARY = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"


def find_azurite_binary() -> Path | None:
    """Locate ``azurite-blob``: the repository's ``.tools`` install first, then ``PATH``.

    Returns:
        The executable's path, or None when neither exists or ``node`` is missing.
    """
    # The npm launcher is a `#!/usr/bin/env node` script: useless without node.
    if shutil.which("node") is None:
        return None
    if LOCAL_BINARY.exists():
        return LOCAL_BINARY
    found = shutil.which("azurite-blob")
    return Path(found) if found else None


class AzuriteService:
    """One Azurite blob service on ``host:port``, persisted in ``location`` or in memory.

    Args:
        port: TCP port of the blob endpoint.
        location: Folder for Azurite's data; None keeps everything in memory.
        log_file: Where Azurite's output goes; the PID file sits next to it (``.pid``).
        host: Interface to bind (loopback by default).
        binary: The ``azurite-blob`` executable; found with ``find_azurite_binary`` if None.
    """

    def __init__(
        self,
        port: int,
        location: Path | None,
        log_file: Path,
        host: str = "127.0.0.1",
        binary: Path | None = None,
    ) -> None:
        self.port = port
        self.location = location
        self.log_file = log_file
        self.host = host
        self.binary = binary
        self.pid_file = log_file.with_suffix(".pid")

    @property
    def endpoint(self) -> str:
        """The blob endpoint URL of Azurite's development account."""
        return f"http://{self.host}:{self.port}/devstoreaccount1"

    def pid(self) -> int | None:
        """PID recorded by ``start``, if the process is still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # The name check guards against a PID recycled since Azurite died.
        return pid if pid_alive(pid, "azurite") else None

    def is_running(self) -> bool:
        """Whether the Azurite process started by ``start`` is alive."""
        return self.pid() is not None

    def command(self) -> list[str]:
        """The command line ``start`` runs."""
        binary = self.binary or find_azurite_binary()
        if binary is None:
            raise BackendError(
                "azurite-blob not found (looked in .tools/node_modules/.bin and on PATH, and it "
                "needs node): run `make setup`"
            )
        args = [
            str(binary),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.port),
            "--disableTelemetry",
            # azure-storage-blob sends an API version newer than Azurite knows.
            "--skipApiVersionCheck",
            "--loose",
        ]
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            args += ["--location", str(self.location)]
        return args

    def start(self, timeout: float = 30.0) -> int:
        """Start Azurite in the background (no-op if already running) and wait until it answers.

        Args:
            timeout: Seconds to wait for the port to accept connections.

        Returns:
            The process id.

        Raises:
            BackendError: The binary is missing, the port is taken by another program, or
                Azurite exited or did not answer in time (the message quotes its log).
        """
        running = self.pid()
        if running is not None:
            return running
        if port_answers(self.host, self.port):
            raise BackendError(
                f"port {self.host}:{self.port} is already in use by another program; stop it "
                "or choose another port (MLOPS_AZURITE_PORT)"
            )
        args = self.command()
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            try:
                # A session of its own: Ctrl-C in the terminal that ran `mlops up` must not
                # reach it, and stop() can signal its whole process group.
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BackendError(f"cannot run {args[0]}: {exc}; run `make setup`") from exc
        self.pid_file.write_text(f"{proc.pid}\n")
        log.info("azurite starting on %s:%s (pid %s)", self.host, self.port, proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BackendError(
                    f"azurite exited with code {proc.returncode} before answering on "
                    f"{self.host}:{self.port}:\n{self._log_tail()}"
                )
            if port_answers(self.host, self.port):
                return proc.pid
            time.sleep(0.1)
        self.stop()
        raise BackendError(
            f"azurite did not answer on {self.host}:{self.port} within {timeout:g} s:\n"
            f"{self._log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the recorded process: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid, "azurite") and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.05)
        if pid_alive(pid, "azurite"):
            log.warning("azurite (pid %s) ignored SIGTERM; killing it", pid)
            signal_group(pid, signal.SIGKILL)
        reap(pid)
        self.pid_file.unlink(missing_ok=True)
        log.info("azurite stopped (pid %s)", pid)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
