"""``Compute`` on this machine: each training job is a detached process with a folder.

``jobs_dir/<job_id>/`` holds everything about a job: ``spec.json`` (what to run),
``inputs/`` (the data, fetched from the data lake, and a copy of the champion's folder),
``outputs/`` (the model folder training wrote), ``decision/decision.json`` (the record the
worker judges by), ``job.log`` and ``status.json``. State lives only in these files, so a
job submitted by one process can be watched, waited on and collected by another.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from backends.local._proc import child_env, kill_group, pid_alive, wait_gone
from backends.local._runner import log_tail, now, write_json
from backends.local.registry import local_folder
from core.interfaces import (
    BackendError,
    DataLake,
    JobState,
    JobStatus,
    ModelInput,
    NotFoundError,
    TrainingJobSpec,
)
from training.artifacts import DECISION_FILE

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SubprocessCompute:
    """Runs ``python -m training.train`` as a local background process per job.

    Args:
        jobs_dir: Folder of job folders (created on first submit).
        datalake: Where ``spec.data_uri`` is read from.
        python: Interpreter for the job (this one by default).
        workdir: Working directory of the job (the repository root by default).
        entrypoint: What follows ``python`` before the job's arguments; tests swap in a stub.
        poll_interval: Longest sleep between two status reads in ``wait``.
        kill_grace: Seconds between SIGTERM and SIGKILL when a job times out.
    """

    def __init__(
        self,
        jobs_dir: Path,
        datalake: DataLake,
        python: str = sys.executable,
        workdir: Path = REPO_ROOT,
        entrypoint: Sequence[str] = ("-m", "training.train"),
        poll_interval: float = 0.5,
        kill_grace: float = 3.0,
    ) -> None:
        self.jobs_dir = jobs_dir.resolve()
        self.datalake = datalake
        self.python = python
        self.workdir = workdir.resolve()
        self.entrypoint = list(entrypoint)
        self.poll_interval = poll_interval
        self.kill_grace = kill_grace

    def submit(self, spec: TrainingJobSpec) -> str:
        """Fetch the data, write the job folder and start the job in the background.

        Returns:
            The job id (``train-YYYYmmddHHMMSS-<6 hex>``).

        Raises:
            NotFoundError: ``spec.data_uri`` does not exist.
            BackendError: The job could not be started.
        """
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        job_id = f"train-{stamp}-{secrets.token_hex(3)}"
        job_dir = self.jobs_dir / job_id
        job_dir.mkdir(parents=True)
        try:
            ref = self.datalake.ref(spec.data_uri)
            # Keep the blob's file name: training picks the reader from the extension.
            name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(ref.name).name).lstrip(".")
            data_path = job_dir / "inputs" / (name or "data")
            data_path.parent.mkdir()
            # Streamed to the job's folder: the worker never holds the data set in memory.
            self.datalake.download(ref.container, ref.name, data_path)
            params = json.dumps(spec.params, sort_keys=True)
            command = [self.python, *self.entrypoint, "--data", str(data_path)]
            command += ["--output", str(job_dir / "outputs"), "--params", params]
            command += job_arguments(spec.champion, job_dir)
            write_json(
                job_dir / "spec.json",
                {
                    "job_id": job_id,
                    "spec": asdict(spec),
                    "command": command,
                    "workdir": str(self.workdir),
                    "submitted_at": now(),
                },
            )
            write_json(job_dir / "status.json", {"job_id": job_id, "state": "queued"})
            self._launch(job_dir)
        except BaseException:
            # No id was handed out: leave no half-made job behind.
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        log.info("submitted %s (%s)", job_id, job_dir)
        return job_id

    def status(self, job_id: str) -> JobStatus:
        """The job's state as recorded in its folder (``NotFoundError`` for an unknown id)."""
        job_dir = self._job_dir(job_id)
        data = _read_json(job_dir / "status.json")
        if not JobState(data["state"]).finished and not self._runner_alive(job_dir, job_id):
            # It may have finished between the two reads; otherwise the runner was killed.
            data = _read_json(job_dir / "status.json")
            if not JobState(data["state"]).finished:
                data = self._fail(job_dir, data, "the job runner died without recording a result")
        return JobStatus(
            job_id=job_id,
            state=JobState(data["state"]),
            message=str(data.get("message", "")),
            url=(job_dir / "job.log").as_uri(),
        )

    def wait(self, job_id: str, timeout: float) -> JobStatus:
        """Poll until the job finishes; after ``timeout`` seconds kill it and mark it FAILED."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            current = self.status(job_id)
            if current.state.finished:
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._time_out(job_id, timeout)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, self.poll_interval)

    def fetch_record(self, job_id: str, dest: Path) -> Path:
        """Copy a completed job's ``decision.json`` (and nothing else) to ``dest/<job_id>``."""
        current = self.status(job_id)
        if current.state is not JobState.COMPLETED:
            raise BackendError(f"job {job_id} is {current.state.value}, no decision record")
        return copy_record(self._job_dir(job_id) / "decision", dest / job_id, job_id)

    def output_uri(self, job_id: str) -> str:
        """The ``file://`` URI of the job's model folder."""
        return (self._job_dir(job_id) / "outputs").as_uri()

    def logs(self, job_id: str) -> str:
        """The job's combined stdout and stderr so far."""
        path = self._job_dir(job_id) / "job.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ helpers
    def _job_dir(self, job_id: str) -> Path:
        job_dir = self.jobs_dir / job_id
        if not _JOB_ID.match(job_id) or not (job_dir / "status.json").is_file():
            raise NotFoundError(f"no training job {job_id!r} in {self.jobs_dir}")
        return job_dir

    def _launch(self, job_dir: Path) -> None:
        # The runner must import `backends` even when the job's workdir is elsewhere.
        path = os.environ.get("PYTHONPATH", "")
        # Only what a Python program needs: this process may hold the storage connection
        # string or cloud credentials, and training reads its data from the job folder.
        env = child_env({"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), path) if p)})
        with (job_dir / "job.log").open("ab") as out:
            # The launcher forks the real runner, records its PID and exits at once.
            code = subprocess.call(
                [self.python, "-m", "backends.local._runner", str(job_dir)],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=60,
            )
        if code != 0 or not (job_dir / "pid.json").exists():
            tail = log_tail(job_dir / "job.log")
            raise BackendError(f"could not start the job runner (exit code {code}):\n{tail}")

    @staticmethod
    def _pid(job_dir: Path) -> int | None:
        try:
            return int(_read_json(job_dir / "pid.json")["pid"])
        except (BackendError, KeyError, ValueError):
            return None

    def _runner_alive(self, job_dir: Path, job_id: str) -> bool:
        pid = self._pid(job_dir)
        if pid is None:
            # submit() has not recorded the runner yet (it removes the folder if it fails).
            return True
        # The job id in its command line tells the runner apart from a recycled PID.
        return pid_alive(pid, job_id)

    def _fail(self, job_dir: Path, data: dict[str, Any], reason: str) -> dict[str, Any]:
        tail = log_tail(job_dir / "job.log")
        message = f"{reason}; last log lines:\n{tail}" if tail else reason
        data = {**data, "state": JobState.FAILED.value, "message": message, "ended_at": now()}
        write_json(job_dir / "status.json", data)
        return data

    def _time_out(self, job_id: str, timeout: float) -> JobStatus:
        job_dir = self._job_dir(job_id)
        pid = self._pid(job_dir)
        if pid is not None and pid_alive(pid, job_id):
            log.warning("job %s timed out after %g s: stopping it", job_id, timeout)
            # The runner leads its own process group (setsid): signal the training too.
            kill_group(pid, signal.SIGTERM)
            wait_gone([pid], job_id, self.kill_grace)
            # SIGKILL the group even if the runner left: the training process may linger.
            kill_group(pid, signal.SIGKILL)
            child = _read_json(job_dir / "status.json").get("child_pid")
            wait_gone([pid, *([child] if child else [])], "", 5.0)
        data = _read_json(job_dir / "status.json")
        if data["state"] != JobState.COMPLETED.value:
            # The runner is gone, so nothing else writes status.json from here on.
            self._fail(job_dir, data, f"timed out after {timeout:g} s")
        return self.status(job_id)


def job_arguments(champion: ModelInput | None, job_dir: Path) -> list[str]:
    """The training command's ``--decision`` and champion arguments for a local job: the
    champion's folder is copied into ``job_dir/inputs/champion`` first (as Azure ML mounts a
    model input), so moving the registry's alias meanwhile cannot change what is scored."""
    arguments = ["--decision", str(job_dir / "decision")]
    if champion is None:
        return arguments
    folder = job_dir / "inputs" / "champion"
    shutil.copytree(local_folder(champion.uri), folder)
    arguments += ["--champion", str(folder), "--champion-version", champion.version]
    return [*arguments, "--champion-sha256", champion.sha256]


def copy_record(source: Path, target: Path, job_id: str) -> Path:
    """Copy ``source/decision.json`` into ``target``; returns the copy."""
    record = source / DECISION_FILE
    if not record.is_file():
        raise BackendError(f"job {job_id} completed but wrote no {DECISION_FILE} ({record})")
    target.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(record, target / DECISION_FILE))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot read {path}: {exc}") from exc
    return data
