"""A Docker engine for the local profile: use a running one, or start ``dockerd`` ourselves.

No image registry and no bridge network are needed: the engine runs with
``--bridge=none`` and without iptables, so containers use ``network_mode="host"`` (or
``"none"``). Its data, sockets, PID file and log live under one folder (``.mlops/docker``),
and Debian's ``dockerd`` starts its own ``containerd`` below its exec root.

Unix socket paths are limited to 108 bytes, so when ``root`` is deep the sockets go to a
short folder under the system's temporary directory instead (named after a hash of root).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.errors import DockerException

from backends.local._proc import pid_alive, reap
from core.interfaces import BackendError

logger = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# containerd puts its own socket at <exec-root>/containerd/containerd.sock: the longest path.
_SOCKET_ROOM = len("/containerd/containerd.sock.ttrpc")
_MAX_SOCKET_PATH = 100
DAEMON_FLAGS = (
    "--iptables=false",
    "--ip6tables=false",
    "--ip-masq=false",
    "--bridge=none",
)


class DockerEngineError(BackendError):
    """The Docker engine cannot be reached or started; the message says why."""


def engine_answers(docker_host: str, timeout: float = 3.0) -> bool:
    """Whether a Docker engine answers ``ping`` at ``docker_host``."""
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=timeout)
    except DockerException:
        return False
    try:
        return bool(client.ping())
    except (DockerException, OSError):
        return False
    finally:
        client.close()


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:  # already gone
        pass


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class DockerEngine:
    """One ``dockerd`` whose state lives under ``root``, or an engine that already runs.

    Args:
        root: Folder for the engine's data, PID file and log (created on demand).
        candidates: Engines to try before starting one; ``None`` means the default socket
            (another engine is chosen with the ``MLOPS_DOCKER_HOST`` setting).
        storage_driver: ``overlay2`` is fast; ``vfs`` works on any file system.
        start_timeout: Seconds to wait for a started engine to answer.
    """

    def __init__(
        self,
        root: Path,
        *,
        candidates: Sequence[str] | None = None,
        storage_driver: str = "overlay2",
        start_timeout: float = 60.0,
    ) -> None:
        self.root = root.resolve()
        self._candidates = candidates
        self.storage_driver = storage_driver
        self.start_timeout = start_timeout
        self.started = False  # whether this object started the engine it uses
        self._proc: subprocess.Popen[bytes] | None = None
        self.pidfile = self.root / "dockerd.pid"
        self.log_path = self.root / "dockerd.log"
        # Exec root (sockets): under root if short enough, else a short folder under /tmp.
        self.run_dir = self.root / "run"
        if len(str(self.run_dir)) + _SOCKET_ROOM > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
            self.run_dir = Path(tempfile.gettempdir()) / f"mlops-dockerd-{digest}"
        self.socket_path = self.run_dir / "docker.sock"
        self.docker_host = f"unix://{self.socket_path}"  # of the engine this object starts

    # ---------------------------------------------------------------- state
    def pid(self) -> int | None:
        """PID of the ``dockerd`` under ``root`` if it is alive, else ``None``."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid, "dockerd") else None

    def is_running(self) -> bool:
        """Whether the engine under ``root`` runs and answers."""
        return self.pid() is not None and engine_answers(self.docker_host)

    def _external(self) -> str | None:
        if self._candidates is None:
            # Not $DOCKER_HOST: settings are read in one place (MLOPS_DOCKER_HOST).
            candidates = [DEFAULT_SOCKET]
        else:
            candidates = list(self._candidates)
        for host in candidates:
            if host and engine_answers(host):
                return host
        return None

    # ---------------------------------------------------------------- start / stop
    def find(self) -> str | None:
        """The ``DOCKER_HOST`` of an engine that answers now (never starts one)."""
        external = self._external()
        if external is not None:
            return external
        return self.docker_host if self.is_running() else None

    def ensure(self) -> str:
        """Return the ``DOCKER_HOST`` of an engine that answers, starting ours if needed.

        Raises:
            DockerEngineError: ``dockerd`` is missing, or did not answer in time (the
                message ends with the tail of its log).
        """
        external = self._external()
        if external is not None:
            logger.info("using the Docker engine at %s", external)
            return external
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.is_running():
                return self.docker_host
            self._start()
        return self.docker_host

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two processes ensuring at once must not both start a daemon on one data root.
        with open(self.root / "ensure.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _command(self, dockerd: str) -> list[str]:
        return [
            dockerd,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.run_dir}",
            f"--pidfile={self.pidfile}",
            f"--host={self.docker_host}",
            f"--storage-driver={self.storage_driver}",
            *DAEMON_FLAGS,
        ]

    def _start(self) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise DockerEngineError(
                "no Docker engine answers and dockerd is not installed: "
                "apt-get install docker.io (deployments/local/install-system.sh does it)"
            )
        if self.pid() is None:  # a daemon that died leaves files that block the next one
            self.pidfile.unlink(missing_ok=True)
            self.socket_path.unlink(missing_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        command = self._command(dockerd)
        logger.info("starting dockerd (log: %s)", self.log_path)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this process; stopped by PID
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DockerEngineError(
                    f"dockerd exited with code {self._proc.returncode} while starting; "
                    f"log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            if engine_answers(self.docker_host, timeout=1.0):
                self.started = True
                logger.info("dockerd %d answers at %s", self._proc.pid, self.docker_host)
                return
            time.sleep(0.2)
        self.stop()
        raise DockerEngineError(
            f"dockerd did not answer within {self.start_timeout:.0f} s; "
            f"log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def _containerd_pid(self) -> int | None:
        try:
            pid = int((self.run_dir / "containerd" / "containerd.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid, "containerd") else None

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the ``dockerd`` under ``root`` (SIGTERM, then SIGKILL after ``timeout``).

        Returns:
            Whether a daemon was running. An external engine is never stopped.
        """
        pid = self.pid()
        if pid is None and self._proc is not None and self._proc.poll() is None:
            pid = self._proc.pid
        if pid is None:
            return False
        containerd = self._containerd_pid()
        logger.info("stopping dockerd %d", pid)
        _signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            logger.warning("dockerd %d ignored SIGTERM for %.0f s: killing it", pid, timeout)
            _signal(pid, signal.SIGKILL)
            self._wait_gone(pid, 5.0)
        # dockerd stops its containerd on a clean exit, not when killed.
        if containerd is not None and pid_alive(containerd, "containerd"):
            _signal(containerd, signal.SIGKILL)
        self._unmount_netns()
        self.started = False
        self._proc = None
        return True

    def _unmount_netns(self) -> None:
        # dockerd leaves its default network namespace bind-mounted under the exec root, which
        # would make the project folder impossible to delete until the next reboot.
        for mount in sorted((self.run_dir / "netns").glob("*")):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reap(pid)
            if not pid_alive(pid):
                return True
            time.sleep(0.1)
        return False
