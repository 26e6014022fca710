"""The interfaces every backend implements, local or Azure.

They speak in URIs and strings, never in local paths or cloud SDK types, so that an
Azure implementation fits without changing callers:

- ``DataLake``: blob containers (landing, curated, quarantine).
- ``Compute``: submit a training job, poll it, fetch its outputs by job id.
- ``ModelRegistry``: model versions (strings) with tags and stage aliases.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable


class BackendError(RuntimeError):
    """A backend failed in a way the caller should report as is."""


class NotFoundError(BackendError):
    """The blob, job, model version or alias does not exist."""


class ConflictError(BackendError):
    """A conditional write lost a race (the object changed since it was read)."""


class TooLargeError(ValueError):
    """A blob is over the size limit: refused without reading it."""


class IntegrityError(BackendError):
    """Stored bytes do not match their recorded sha256."""


# --------------------------------------------------------------------------- data lake
@dataclass(frozen=True)
class BlobRef:
    """One blob: where it is and the version of it that was seen."""

    container: str
    name: str
    uri: str
    etag: str = ""
    size: int = 0
    last_modified: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class DataLake(Protocol):
    """Blob storage with containers. Names are blob names; ``uri`` is the blob URL."""

    def ensure_containers(self, *names: str) -> None: ...

    def put(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> BlobRef:
        """Write a blob. ``if_match`` (an etag) or ``if_none_match`` make the write
        conditional; a lost race raises ``ConflictError``."""
        ...

    def get(self, container: str, name: str) -> tuple[bytes, BlobRef]: ...

    def download(
        self,
        container: str,
        name: str,
        dest: Path,
        *,
        etag: str | None = None,
        max_bytes: int | None = None,
    ) -> BlobRef:
        """Stream a blob into the local file ``dest``, a chunk at a time (memory does not
        grow with the blob); returns the version read. ``etag``: only that version
        (``ConflictError`` if it changed). ``max_bytes``: a larger blob raises
        ``TooLargeError`` before its content is read."""
        ...

    def upload(
        self,
        container: str,
        name: str,
        source: Path,
        *,
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
    ) -> BlobRef:
        """Write the local file ``source`` as a blob, streamed a block at a time;
        ``if_none_match``: only if absent (``ConflictError`` otherwise)."""
        ...

    def list(self, container: str, prefix: str = "") -> list[BlobRef]: ...

    def copy(
        self, src: BlobRef, container: str, name: str, metadata: dict[str, str] | None = None
    ) -> BlobRef: ...

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None: ...

    def exists(self, container: str, name: str) -> bool: ...

    def ref(self, uri: str) -> BlobRef:
        """Parse a blob URL (or ``container/name``) back into a reference (no I/O)."""
        ...

    def uri(self, container: str, name: str) -> str: ...


# --------------------------------------------------------------------------- compute
class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class ModelInput:
    """A registered model handed to a job as an input (the champion it scores).

    Each backend resolves it its own way: Azure ML mounts ``azureml:<name>:<version>``, a
    local backend copies the folder ``uri`` names. ``sha256`` is the registry's digest of
    the model file; the job refuses a file that differs.
    """

    name: str
    version: str
    uri: str
    sha256: str

    @classmethod
    def of(cls, version: ModelVersion) -> ModelInput:
        return cls(version.name, version.version, version.uri, version.sha256)


@dataclass(frozen=True)
class TrainingJobSpec:
    """What a training job needs: the data (a blob URI) and the parameters (JSON-able), and
    the champion to score beside the challenger (``None`` before the first release)."""

    data_uri: str
    params: dict[str, object]
    experiment: str
    display_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    champion: ModelInput | None = None


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobState
    message: str = ""
    url: str = ""  # where a person can watch the job (AML studio; a log file locally)


@runtime_checkable
class Compute(Protocol):
    """Runs ``python -m training.train`` somewhere: the job trains the challenger, scores it
    and the champion on one holdout, and writes a decision record (``decision.json``) apart
    from its model folder, so a worker can judge without touching a model file."""

    def submit(self, spec: TrainingJobSpec) -> str:
        """Start the job; returns its id at once."""
        ...

    def status(self, job_id: str) -> JobStatus: ...

    def wait(self, job_id: str, timeout: float) -> JobStatus:
        """Poll until the job finishes or ``timeout`` seconds pass (then cancel, FAILED)."""
        ...

    def fetch_record(self, job_id: str, dest: Path) -> Path:
        """Copy only the job's ``decision.json`` under ``dest``; returns its path."""
        ...

    def output_uri(self, job_id: str) -> str:
        """Where the job's model folder is, for ``ModelRegistry.register_output``."""
        ...

    def logs(self, job_id: str) -> str: ...


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    uri: str  # where the registry keeps the artifact folder
    sha256: str  # of the model file
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created_at: datetime | None = None


STAGES = ("candidate", "qa", "production")


@runtime_checkable
class ModelRegistry(Protocol):
    """Versioned models with tags and stage aliases (``candidate``, ``qa``, ``production``)."""

    def register(
        self, name: str, artifact_dir: Path, model_file: str, tags: dict[str, str]
    ) -> ModelVersion:
        """Store ``artifact_dir`` as the next version, with the sha256 of ``model_file``."""
        ...

    def register_output(
        self, name: str, output_uri: str, model_file: str, sha256: str, tags: dict[str, str]
    ) -> ModelVersion:
        """Register a job's model folder where the job left it (``Compute.output_uri``), without
        this process loading the model; ``sha256`` is the digest the job recorded for
        ``model_file`` (``IntegrityError`` where the registry can see it differs)."""
        ...

    def get(self, name: str, version: str) -> ModelVersion: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def find(self, name: str, tags: dict[str, str]) -> list[ModelVersion]:
        """Versions whose tags include every given key/value."""
        ...

    def get_alias(self, name: str, alias: str) -> ModelVersion | None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None: ...

    def download(self, name: str, version: str, dest: Path) -> Path:
        """Copy the version's artifact folder under ``dest`` and verify the model's sha256
        (``IntegrityError`` on mismatch); returns the folder."""
        ...


# --------------------------------------------------------------------------- release
@dataclass(frozen=True)
class ReleaseSpec:
    """What to run: a scoring image (or, for the process target, the model folder) for one
    registered model version."""

    model_name: str
    model_version: str
    model_sha256: str
    image: str = ""  # docker image tag; empty for the process target
    model_uri: str = ""  # registry artifact folder URI (file:// locally)
    replicas: int = 1

    def model_env(self) -> dict[str, str]:
        """The scoring service's variables naming the model it must serve. The release, not
        the image, is the truth: the service refuses a model whose sha256 differs, so a wrong
        image never becomes ready."""
        return {
            "SCORING_MODEL_NAME": self.model_name,
            "SCORING_MODEL_VERSION": self.model_version,
            "SCORING_MODEL_SHA256": self.model_sha256,
        }


@dataclass(frozen=True)
class Endpoint:
    """A running scoring service as a client sees it."""

    environment: str  # "qa" or "production"
    url: str  # base URL; the scoring route is url + "/score"
    key: str = field(repr=False)  # never printed in reprs or logs
    model_name: str = ""
    model_version: str = ""
    image: str = ""
    since: datetime | None = None  # when this release started serving (None: not recorded)


@runtime_checkable
class ImageBuilder(Protocol):
    """Turns a model artifact folder into a scoring image (docker locally, ACR in Azure)."""

    def build(
        self, model_name: str, model_version: str, artifact_dir: Path, code_version: str
    ) -> str:
        """Build (or reuse) the image; returns its reference (a tag, or a registry digest).
        Fails if the scoring environment's library versions differ from the ones recorded at
        training time."""
        ...


@runtime_checkable
class DeploymentTarget(Protocol):
    """A place that runs scoring services: ACI (QA) and AKS (production) in Azure; a local
    Docker engine or plain processes here."""

    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        """Run ``release`` in ``environment``, replacing what runs there without downtime; the
        replaced release is remembered for ``rollback``."""
        ...

    def current(self, environment: str) -> Endpoint | None: ...

    def current_release(self, environment: str) -> ReleaseSpec | None: ...

    def previous(self, environment: str) -> ReleaseSpec | None: ...

    def health(self, environment: str) -> bool: ...

    def rollback(self, environment: str) -> Endpoint:
        """Put the previous release back (zero downtime) and return its endpoint."""
        ...

    def teardown(self, environment: str) -> None: ...


# --------------------------------------------------------------------------- sweeps
@dataclass(frozen=True)
class SweepSpec:
    """A hyperparameter sweep run as one job of the backend's own: the trials of ``job``
    over the grid ``space`` (hyperparameter -> values), compared by ``metric``."""

    job: TrainingJobSpec  # its params are the base every trial starts from
    space: dict[str, list[object]]
    max_trials: int
    max_parallel: int
    metric: str
    goal: Literal["minimize", "maximize"]


@dataclass(frozen=True)
class SweepRun:
    """A finished sweep: its trials (job id -> final status) and the best one's job id."""

    sweep_id: str
    best: str
    trials: dict[str, JobStatus]
    url: str = ""


@runtime_checkable
class SweepCompute(Compute, Protocol):
    """A compute backend with a sweep service of its own (Azure ML's sweep jobs); others run
    a sweep as separate training jobs (``tasks.sweep``)."""

    def sweep(self, spec: SweepSpec, timeout: float) -> SweepRun:
        """Run the sweep to its end (canceled after ``timeout`` seconds); each trial is a job
        whose ``fetch_record`` and ``output_uri`` work as a training job's do.

        Raises:
            BackendError: The sweep failed, was canceled, or named no best trial.
        """
        ...


# --------------------------------------------------------------------------- batch scoring
@dataclass(frozen=True)
class BatchScoringSpec:
    """A file of features in the lake to score with a registered model.

    ``output_uri`` is a folder of the lake (``<container>/<prefix>/``): the job leaves
    ``predictions.<format>`` in it, then ``lineage.json`` (the mark of a complete output).
    """

    input_uri: str
    output_uri: str
    model: ModelInput
    chunk_rows: int
    output_format: str = "parquet"  # or "csv"
    display_name: str = ""


@runtime_checkable
class BatchScoring(Protocol):
    """Runs ``training.batch_score`` on a lake file: a local process here, an Azure ML
    parallel job in Azure. Same job states as ``Compute``."""

    def submit(self, spec: BatchScoringSpec) -> str:
        """Start the job; returns its id at once."""
        ...

    def status(self, job_id: str) -> JobStatus: ...

    def wait(self, job_id: str, timeout: float) -> JobStatus:
        """Poll until the job finishes or ``timeout`` seconds pass (then cancel, FAILED)."""
        ...

    def collect(self, job_id: str) -> dict[str, object]:
        """Make a completed job's outputs final at its ``output_uri`` (predictions, then
        lineage) and return the lineage record. Safe to call again."""
        ...

    def logs(self, job_id: str) -> str: ...
