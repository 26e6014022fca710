"""``BatchScoring`` on this machine: each batch job is a detached process with a folder.

The same job mechanics as training (``SubprocessCompute``: ``jobs_dir/<job_id>/`` with
``spec.json``, ``status.json``, ``job.log``, a detached runner), running
``python -m training.batch_score``. ``submit`` streams the input blob to ``inputs/`` and
copies the registered model folder beside it; the job writes ``outputs/``; ``collect``
streams the predictions to the lake and then ``lineage.json`` (the commit mark). The job
process gets no storage credential: only the worker talks to the lake.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from backends.local._runner import now, write_json
from backends.local.compute import REPO_ROOT, SubprocessCompute
from backends.local.registry import local_folder
from core.interfaces import (
    BackendError,
    BatchScoringSpec,
    Compute,
    DataLake,
    JobState,
    JobStatus,
)
from training.batch import LINEAGE_FILE

log = logging.getLogger(__name__)


def output_folder(datalake: DataLake, output_uri: str) -> tuple[str, str]:
    """The container and the folder prefix (ending in ``/``) of an output URI."""
    ref = datalake.ref(output_uri.rstrip("/") + "/")
    prefix = ref.name.strip("/")
    if not prefix:
        raise ValueError(f"{output_uri!r} names no folder (expected <container>/<folder>/)")
    return ref.container, prefix + "/"


class JobsOf:
    """Status, wait and logs of batch jobs, read through the training backend's (``_jobs``):
    a batch job is a job of the same kind, only its command differs."""

    _jobs: Compute

    def status(self, job_id: str) -> JobStatus:
        return self._jobs.status(job_id)

    def wait(self, job_id: str, timeout: float) -> JobStatus:
        return self._jobs.wait(job_id, timeout)

    def logs(self, job_id: str) -> str:
        return self._jobs.logs(job_id)


class SubprocessBatchScoring(JobsOf):
    """Runs ``python -m training.batch_score`` as a local background process per job.

    Args:
        jobs_dir: Folder of job folders (shared with training jobs: ids do not collide).
        datalake: Where inputs are read from and outputs written to.
        python: Interpreter for the job (this one by default).
    """

    _jobs: SubprocessCompute

    def __init__(self, jobs_dir: Path, datalake: DataLake, python: str = sys.executable) -> None:
        self.datalake = datalake
        self.python = python
        # The job folder, runner, status, wait and timeout of training jobs.
        self._jobs = SubprocessCompute(jobs_dir, datalake, python=python)

    def submit(self, spec: BatchScoringSpec) -> str:
        """Fetch the input and the model, write the job folder and start the job.

        Raises:
            NotFoundError: The input blob does not exist.
            ValueError: The output URI names no folder, or the format is unknown.
            BackendError: The job could not be started.
        """
        if spec.output_format not in ("parquet", "csv"):
            raise ValueError(f"unknown output format {spec.output_format!r}: parquet or csv")
        output_folder(self.datalake, spec.output_uri)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        job_id = f"batch-{stamp}-{secrets.token_hex(3)}"
        job_dir = self._jobs.jobs_dir / job_id
        job_dir.mkdir(parents=True)
        try:
            ref = self.datalake.ref(spec.input_uri)
            name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(ref.name).name).lstrip(".")
            data = job_dir / "inputs" / (name or "data")
            data.parent.mkdir()
            # Streamed a chunk at a time: neither the worker nor the job holds the file.
            read = self.datalake.download(ref.container, ref.name, data)
            model = job_dir / "inputs" / "model"
            shutil.copytree(local_folder(spec.model.uri), model)
            command = [self.python, "-m", "training.batch_score", "--data", str(data)]
            command += ["--model", str(model), "--model-name", spec.model.name]
            command += ["--model-version", spec.model.version]
            command += ["--model-sha256", spec.model.sha256, "--output", str(job_dir / "outputs")]
            command += ["--format", spec.output_format, "--chunk-rows", str(spec.chunk_rows)]
            command += ["--input-uri", read.uri, "--input-etag", read.etag]
            command += ["--output-uri", spec.output_uri]
            write_json(
                job_dir / "spec.json",
                {
                    "job_id": job_id,
                    "kind": "batch scoring",
                    "batch": _jsonable(spec),
                    "command": command,
                    "workdir": str(REPO_ROOT),
                    "submitted_at": now(),
                },
            )
            write_json(job_dir / "status.json", {"job_id": job_id, "state": "queued"})
            self._jobs._launch(job_dir)  # the training jobs' launcher, shared on purpose
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        log.info("submitted batch job %s (%s)", job_id, job_dir)
        return job_id

    def collect(self, job_id: str) -> dict[str, Any]:
        """Upload the predictions, then ``lineage.json``, to the job's output folder.

        A lineage already in the lake goes first, so until the new one lands no lineage
        describes a predictions file it did not see (blob uploads commit whole or not at all).
        """
        current = self.status(job_id)
        if current.state is not JobState.COMPLETED:
            raise BackendError(f"batch job {job_id} is {current.state.value}: {current.message}")
        job_dir = self._jobs.jobs_dir / job_id
        spec = json.loads((job_dir / "spec.json").read_text(encoding="utf-8"))["batch"]
        outputs = job_dir / "outputs"
        lineage: dict[str, Any] = json.loads((outputs / LINEAGE_FILE).read_text("utf-8"))
        container, prefix = output_folder(self.datalake, spec["output_uri"])
        self.datalake.ensure_containers(container)
        if self.datalake.exists(container, prefix + LINEAGE_FILE):
            self.datalake.delete(container, prefix + LINEAGE_FILE)
        predictions = lineage["output"]["file"]
        put = self.datalake.upload(container, prefix + predictions, outputs / predictions)
        lineage["output"]["uri"] = put.uri
        self.datalake.put(
            container,
            prefix + LINEAGE_FILE,
            json.dumps(lineage, indent=2, sort_keys=True).encode(),
            metadata={"model_version": str(lineage["model"]["version"])},
        )
        return lineage


def _jsonable(spec: BatchScoringSpec) -> dict[str, Any]:
    return asdict(spec)
