"""Small process helpers shared by the local services (Azurite, training jobs).

Processes started here outlive their parent, so they are tracked by PID files and
checked through ``/proc`` where it exists (Linux), with portable fallbacks.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Mapping
from pathlib import Path

# The only variables a child process (training job, scoring replica, HAProxy) gets from this
# one's environment: what a Python program needs to run, no credential (storage connection
# string, cloud secret, API key) and no setting it was not given on purpose.
PASSED_VARS = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH",
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
)  # fmt: skip


def child_env(extra: Mapping[str, str] = {}) -> dict[str, str]:  # noqa: B006  (read only)
    """The environment of a child process: ``PASSED_VARS`` from this one, then ``extra``."""
    env = {name: os.environ[name] for name in PASSED_VARS if name in os.environ}
    env.update(extra)
    return env


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int, cmdline_part: str = "") -> bool:
    """Whether ``pid`` is a live process (zombies count as dead).

    Args:
        pid: Process id.
        cmdline_part: If given, the process's command line must contain it; this guards
            against a recycled PID after the original process died (Linux only).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return not cmdline_part
    proc = Path(f"/proc/{pid}")
    try:
        # An exited child nobody reaped yet still answers kill(0): look at its state.
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return cmdline_part in cmdline


def reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid`` (or to ``pid`` alone if it leads none)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``, even if its leader has already exited."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_gone(pids: list[int], cmdline_part: str, timeout: float) -> None:
    """Wait up to ``timeout`` seconds until none of ``pids`` is alive (see ``pid_alive``)."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(p, cmdline_part) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
