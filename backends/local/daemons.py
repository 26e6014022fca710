"""Long-lived local processes (HAProxy, scoring replicas) that outlive whoever starts them.

A process is known by a handle ``{"pid": ..., "start": ...}``: ``start`` is its start time
from ``/proc``, so a PID recycled by an unrelated process is never mistaken for ours (and
never signalled). Each daemon leads its own session, so stopping it signals its whole
process group (uvicorn workers included) and a Ctrl-C in the starting shell does not reach it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from backends.local._proc import child_env, pid_alive, reap, signal_group

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Popen objects of the daemons this process started, so that they can be reaped (no zombies,
# no "still running" warnings); daemons started by other processes are handled by PID.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22: start time in clock ticks


def spawn(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> dict[str, Any]:
    """Start ``argv`` detached, output appended to ``log_path``, importing from this project.

    Args:
        argv: Command line.
        env: Variables added to the small base environment.
        log_path: File that receives stdout and stderr.

    Returns:
        The daemon's handle.
    """
    # A small environment: no cloud credentials or other secrets leak into daemons.
    base = child_env({"PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env={**base, **env},
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return {"pid": proc.pid, "start": _start_time(proc.pid)}


def alive(handle: Mapping[str, Any]) -> bool:
    """Whether the daemon behind ``handle`` still runs (exited or recycled PIDs: False)."""
    pid = int(handle["pid"])
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        del _children[pid]
        return False
    if not pid_alive(pid):
        return False
    started = _start_time(pid)
    return started is None or handle.get("start") in (None, started)


def stop(handle: Mapping[str, Any], timeout: float = 10.0) -> None:
    """SIGTERM the daemon's process group, SIGKILL it after ``timeout``; wait until it is gone."""
    pid = int(handle["pid"])
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not alive(handle):
            break
        signal_group(pid, sig)
        deadline = time.monotonic() + wait
        while alive(handle) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.02)
    reap(pid)
    _children.pop(pid, None)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("" when there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
