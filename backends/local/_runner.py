"""Run one local training job: ``python -m backends.local._runner JOB_DIR``.

Started by ``SubprocessCompute.submit``. It detaches (fork + new session) so the job
outlives whoever submitted it, records its PID in ``JOB_DIR/pid.json`` before the launcher
exits, runs the command from ``spec.json`` with output to ``job.log``, and writes
``status.json`` as the job moves on. Every state lives in files: any process can read it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from backends.local._proc import child_env

LOG_TAIL_LINES = 20


def now() -> str:
    """The current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ("" if there is none)."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run(job_dir: Path) -> int:
    """Run the job in ``job_dir`` in this process and record how it ends.

    Returns:
        The command's exit code (negative: killed by that signal).
    """
    spec = json.loads((job_dir / "spec.json").read_text(encoding="utf-8"))
    status_file = job_dir / "status.json"
    status: dict[str, Any] = json.loads(status_file.read_text(encoding="utf-8"))
    status.update(state="running", pid=os.getpid(), started_at=now())
    canceled: list[int] = []

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # Ends the command; the job is then recorded as canceled rather than failed.
        canceled.append(signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    with (job_dir / "job.log").open("ab") as log:
        try:
            child = subprocess.Popen(
                spec["command"],
                cwd=spec["workdir"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The allowlist again: whoever started this runner, no secret reaches training.
                env=child_env({"PYTHONUNBUFFERED": "1"}),
            )
        except OSError as exc:
            status.update(state="failed", exit_code=None, ended_at=now())
            status["message"] = f"could not start {spec['command'][0]}: {exc}"
            write_json(status_file, status)
            return 127
        status["child_pid"] = child.pid
        write_json(status_file, status)
        while True:
            try:
                code = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if canceled:
                    child.terminate()
    status.update(exit_code=code, ended_at=now())
    if canceled:
        status.update(state="canceled", message="canceled (SIGTERM)")
    elif code == 0:
        status.update(state="completed", message="")
    else:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        tail = log_tail(job_dir / "job.log")
        job = spec.get("kind", "training")  # batch jobs name themselves
        status.update(state="failed", message=f"{job} {how}; last log lines:\n{tail}")
    write_json(status_file, status)
    return code


def detach_and_run(job_dir: Path) -> None:
    """Fork: the parent records the child's PID and exits; the child runs the job.

    The submitter waits only for the parent, so it never keeps a zombie, and the job
    survives the submitter (a Prefect worker restarting, a CLI returning).
    """
    pid = os.fork()
    if pid:
        write_json(job_dir / "pid.json", {"pid": pid})
        os._exit(0)
    # Its own session and process group: the job can be killed as a whole, and a Ctrl-C
    # in the submitter's terminal does not reach it.
    os.setsid()
    # Whatever this process itself prints (a traceback) lands in the job's log too.
    log = os.open(job_dir / "job.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 1
    try:
        code = run(job_dir)
    except BaseException as exc:
        traceback.print_exc()
        status = {"state": "failed", "ended_at": now(), "message": f"job runner crashed: {exc!r}"}
        write_json(job_dir / "status.json", status)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if code == 0 else 1)


if __name__ == "__main__":
    detach_and_run(Path(sys.argv[1]).resolve())
