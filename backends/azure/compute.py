"""``Compute`` on Azure Machine Learning: each training run is an AML command job.

The job runs the same ``python -m training.train`` as the local backend, on the cluster
named in settings, in the training environment built from ``constraints.txt``
(``backends.azure.environment``: registered on first use, versioned by the pins), so the model
it trains loads in the scoring image. The champion comes in as a ``custom_model`` input
(``azureml:<name>:<version>``) and is scored by the job, in that one environment, on the
challenger's holdout. Two outputs: ``model`` (the model folder, registered from where it lies:
``output_uri``) and ``decision`` (only ``decision.json``: all ``fetch_record`` downloads, so
the worker never reads, let alone unpickles, a model the job wrote).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceNotFoundError

from backends.azure.jobs import (
    DECISION_OUTPUT,
    OUTPUT_NAME,
    checked_params,
    job_inputs,
    job_name,
    job_outputs,
    map_status,
    status_text,
    training_command,
)
from core.interfaces import (
    BackendError,
    JobState,
    JobStatus,
    NotFoundError,
    SweepRun,
    SweepSpec,
    TrainingJobSpec,
)
from training.artifacts import DECISION_FILE

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from core.settings import AzureSettings

log = logging.getLogger(__name__)


class AmlCompute:
    """Runs training as Azure ML command jobs.

    Args:
        ml_client: The workspace client (see ``backends.azure.client.workspace_client``).
        settings: Compute cluster, environment and poll interval.
        code_dir: The folder holding the ``training`` package (the repository root); only
            that package is uploaded as the job's code snapshot.
        lock: The pins of the training environment; ``code_dir/constraints.txt`` by default.
        sleep: Waits between polls (tests pass a fake clock).
        clock: Monotonic seconds (tests pass a fake clock).
        cancel_wait: Seconds ``wait`` gives a cancellation to be acknowledged on timeout.
    """

    def __init__(
        self,
        ml_client: MLClient,
        settings: AzureSettings,
        code_dir: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        cancel_wait: float = 60.0,
        lock: Path | None = None,
    ) -> None:
        self._client = ml_client
        self.settings = settings
        self.code_dir = code_dir
        self.lock = lock or code_dir / "constraints.txt"
        self._sleep = sleep
        self._clock = clock
        self._cancel_wait = cancel_wait

    def submit(self, spec: TrainingJobSpec) -> str:
        """Upload the code snapshot and create the job; returns the job name at once.

        Raises:
            ValueError: ``spec.data_uri`` is not in cloud storage, or the parameters
                contain ``${{`` (Azure ML would read it as a binding).
            BackendError: Azure ML refused the job.
        """
        params = checked_params(spec)
        # Loading azure.ai.ml takes seconds: only when a job is really submitted.
        from azure.ai.ml import command
        from azure.ai.ml.exceptions import MlException

        name = job_name("train")
        inputs = job_inputs(spec)
        with self._code_snapshot() as code:
            environment = self._environment()
            job = command(
                name=name,
                code=str(code),
                command=training_command(params, spec.champion),
                inputs=inputs,
                outputs=job_outputs(),
                environment=environment,
                compute=self.settings.compute_name,
                instance_count=self.settings.instance_count,
                experiment_name=spec.experiment,
                display_name=spec.display_name or name,
                tags=dict(spec.tags),
            )
            try:
                created = self._client.jobs.create_or_update(job)
            except (AzureError, MlException) as exc:  # MlException: the code upload failed
                raise BackendError(f"Azure ML refused training job {name}: {exc}") from exc
        log.info("submitted Azure ML job %s (%s)", name, created.studio_url or "")
        return str(created.name or name)

    def sweep(self, spec: SweepSpec, timeout: float) -> SweepRun:
        """Run ``spec`` as one Azure ML sweep job on the cluster (``backends.azure.sweep``)."""
        from backends.azure.sweep import run_sweep

        return run_sweep(
            self._client,
            self.settings,
            spec,
            timeout,
            code=self._code_snapshot,
            environment=self._environment,
            wait=self.wait,
            status=self.status,
        )

    def status(self, job_id: str) -> JobStatus:
        """The job's state as Azure ML reports it (``NotFoundError`` for an unknown name)."""
        try:
            job = self._client.jobs.get(job_id)
        except ResourceNotFoundError as exc:
            raise NotFoundError(f"no Azure ML job {job_id!r}") from exc
        except AzureError as exc:
            raise BackendError(f"cannot read Azure ML job {job_id}: {exc}") from exc
        return JobStatus(
            job_id=job_id,
            state=map_status(job.status),
            message=f"Azure ML status {status_text(job.status)}",
            url=job.studio_url or "",
        )

    def wait(self, job_id: str, timeout: float) -> JobStatus:
        """Poll every ``job_poll_seconds`` until the job finishes; after ``timeout`` seconds
        cancel it and report FAILED."""
        deadline = self._clock() + timeout
        while True:
            current = self.status(job_id)
            if current.state.finished:
                return current
            remaining = deadline - self._clock()
            if remaining <= 0:
                return self._time_out(job_id, timeout)
            self._sleep(min(self.settings.job_poll_seconds, remaining))

    def fetch_record(self, job_id: str, dest: Path) -> Path:
        """Download only a completed job's ``decision`` output under ``dest/<job_id>``; returns
        its ``decision.json``. Nothing of the ``model`` output is fetched."""
        current = self.status(job_id)
        if current.state is not JobState.COMPLETED:
            raise BackendError(f"job {job_id} is {current.state.value}, no decision record")
        target = dest / job_id
        shutil.rmtree(target, ignore_errors=True)
        try:
            self._client.jobs.download(
                job_id, download_path=str(target), output_name=DECISION_OUTPUT
            )
        except AzureError as exc:
            raise BackendError(f"cannot download the decision of job {job_id}: {exc}") from exc
        found = sorted(target.rglob(DECISION_FILE), key=lambda p: len(p.parts))
        if not found:
            raise BackendError(f"job {job_id} completed but wrote no {DECISION_FILE}")
        return found[0]

    def output_uri(self, job_id: str) -> str:
        """The job's ``model`` output as Azure ML names it, for registering it in place."""
        return f"azureml://jobs/{job_id}/outputs/{OUTPUT_NAME}"

    def logs(self, job_id: str) -> str:
        """The job's user logs (best effort: a note with the studio URL if they are missing)."""
        with tempfile.TemporaryDirectory(prefix="aml-logs-") as tmp:
            try:
                # Without output_name the SDK fetches the default artifacts: the logs.
                self._client.jobs.download(job_id, download_path=tmp)
            except Exception as exc:  # logs are a convenience: never break a caller
                log.warning("no logs for Azure ML job %s: %s", job_id, exc)
                return f"(logs unavailable: {exc})"
            files = sorted(Path(tmp).rglob("user_logs/*.txt")) or sorted(Path(tmp).rglob("*.txt"))
            parts = [f"== {p.name}\n{p.read_text(errors='replace')}" for p in files]
        return "\n".join(parts)

    # ------------------------------------------------------------------ helpers
    def _environment(self) -> str:
        """The job's environment: the lock's version of the named one, registered if missing;
        a setting of ``name:version`` or ``name@label`` is taken as it is."""
        configured = self.settings.environment
        if ":" in configured.removeprefix("azureml:") or "@" in configured:
            return _environment_ref(configured)
        from backends.azure.environment import TrainingEnvironment

        name = configured.removeprefix("azureml:")
        return TrainingEnvironment(self._client, name, self.lock).ensure()

    @contextmanager
    def _code_snapshot(self) -> Iterator[Path]:
        # The job needs only the training package; uploading the repository would ship
        # virtualenvs and state folders. Identical content hashes alike, so the SDK skips
        # re-uploading a snapshot it already has.
        package = self.code_dir / "training"
        if not (package / "train.py").is_file():
            raise BackendError(f"{self.code_dir} holds no training package")
        with tempfile.TemporaryDirectory(prefix="aml-code-") as tmp:
            root = Path(tmp) / "code"
            shutil.copytree(package, root / "training", ignore=shutil.ignore_patterns(*_JUNK))
            yield root

    def _time_out(self, job_id: str, timeout: float) -> JobStatus:
        log.warning("Azure ML job %s timed out after %g s: canceling it", job_id, timeout)
        try:
            self._client.jobs.begin_cancel(job_id).wait(timeout=self._cancel_wait)
        except AzureError as exc:
            log.warning("could not cancel Azure ML job %s: %s", job_id, exc)
        final = self.status(job_id)
        if final.state is JobState.COMPLETED:
            return final  # it finished while the cancel was on its way
        return JobStatus(
            job_id=job_id,
            state=JobState.FAILED,
            message=f"timed out after {timeout:g} s; cancel requested ({final.message})",
            url=final.url,
        )


_JUNK = ("__pycache__", "*.pyc", ".*")


def _environment_ref(value: str) -> str:
    # The SDK resolves "name@label" only without the "azureml:" prefix (with it, it looks up
    # an environment literally named "azureml:name"); "azureml:name:version" works as is.
    if "@" in value and value.startswith("azureml:"):
        return value.removeprefix("azureml:")
    return value
