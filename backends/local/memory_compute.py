"""``Compute`` that runs the training command inside this process: for flow unit tests.

It calls ``training.train.main`` with the same arguments the subprocess and Azure ML jobs get,
so a flow test trains real models on real data in milliseconds, with no process to start.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from itertools import count
from pathlib import Path, PurePosixPath

from backends.local.compute import copy_record, job_arguments
from core.interfaces import (
    BackendError,
    DataLake,
    JobState,
    JobStatus,
    NotFoundError,
    TrainingJobSpec,
)


class InProcessCompute:
    """Runs each job to its end inside ``submit``; jobs live under ``root``."""

    def __init__(self, datalake: DataLake, root: Path) -> None:
        self.datalake = datalake
        self.root = root
        self.submitted: list[TrainingJobSpec] = []
        self._ids = count(1)
        self._status: dict[str, JobStatus] = {}
        # One job at a time: redirecting stderr is process-wide (sweeps submit from threads).
        self._running = threading.Lock()

    def submit(self, spec: TrainingJobSpec) -> str:
        """Fetch the data and run ``python -m training.train``'s ``main`` on it."""
        with self._running:
            return self._run(spec)

    def _run(self, spec: TrainingJobSpec) -> str:
        from training import train  # the training command, exactly as a job runs it

        job_id = f"inproc-{next(self._ids)}"
        job_dir = self.root / job_id
        ref = self.datalake.ref(spec.data_uri)
        data_path = job_dir / "inputs" / PurePosixPath(ref.name).name
        data_path.parent.mkdir(parents=True)
        self.datalake.download(ref.container, ref.name, data_path)
        argv = ["--data", str(data_path), "--output", str(job_dir / "outputs")]
        argv += ["--params", json.dumps(spec.params, sort_keys=True)]
        argv += job_arguments(spec.champion, job_dir)
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            code = train.main(argv)
        self.submitted.append(spec)
        state = JobState.COMPLETED if code == 0 else JobState.FAILED
        message = "" if code == 0 else errors.getvalue().strip()[-2000:]
        self._status[job_id] = JobStatus(job_id, state, message, url=str(job_dir))
        return job_id

    def status(self, job_id: str) -> JobStatus:
        try:
            return self._status[job_id]
        except KeyError:
            raise NotFoundError(f"no job {job_id}") from None

    def wait(self, job_id: str, timeout: float) -> JobStatus:
        return self.status(job_id)

    def fetch_record(self, job_id: str, dest: Path) -> Path:
        if self.status(job_id).state is not JobState.COMPLETED:
            raise BackendError(f"job {job_id} failed: {self.status(job_id).message}")
        return copy_record(self.root / job_id / "decision", dest / job_id, job_id)

    def output_uri(self, job_id: str) -> str:
        self.status(job_id)
        return (self.root / job_id / "outputs").resolve().as_uri()

    def logs(self, job_id: str) -> str:
        return self.status(job_id).message
