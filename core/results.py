"""What a retraining or release run concluded, as typed records.

Flows return them, the reporting tasks render them, the CLI, the demo and the tests read
them: nothing parses a human message. ``outcome`` is a closed set of words; ``message`` is
for people only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from training.gate_models import Decision

RetrainingOutcome = Literal[
    "registered",
    "challenger rejected",
    "up to date",
    "already judged",
    "data rejected",
    "no data",
]
# failed: the run crashed on the file (it stays in landing, attempts counted);
# dead-lettered: it did so too often and moved to the dead-letter container.
FileOutcome = Literal["merged", "replay", "quarantined", "failed", "dead-lettered"]
TAKEN = ("merged", "replay")  # the file outcomes that are not a problem
ReleaseOutcome = Literal["released", "no-op", "rejected in QA", "not approved", "rolled back"]
ReleaseStage = Literal["qa", "approval", "production"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileResult(_Record):
    """One landing file of a retraining run and what became of it."""

    file: str
    result: FileOutcome
    details: str
    data_docs: str | None = None
    quarantined_as: str | None = None
    dead_lettered_as: str | None = None


class RetrainingSummary(_Record):
    """The conclusion of one retraining run.

    Attributes:
        outcome: What the run concluded (see ``RetrainingOutcome``).
        failed: Whether the run ends Failed: a file was quarantined, failed or dead-lettered.
        version: The version registered (``registered``) or already trained on this data
            with these parameters (``up to date``).
        decision: The gate's decision when a challenger was trained, or the remembered one
            (``already judged``: a challenger on this data with these parameters was rejected
            against the same champion and gate).
    """

    model: str
    outcome: RetrainingOutcome
    message: str
    failed: bool = False
    files: tuple[FileResult, ...] = ()
    data_fingerprint: str | None = None
    curated_rows: int | None = None
    data_uri: str | None = None
    version: str | None = None
    job_id: str | None = None
    decision: Decision | None = None

    @property
    def quarantined(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.result == "quarantined")

    @property
    def crashed(self) -> tuple[FileResult, ...]:
        """Files the run failed on (not their validation): failed or dead-lettered."""
        return tuple(f for f in self.files if f.result in ("failed", "dead-lettered"))


class ReleaseReport(_Record):
    """The conclusion of one release run.

    Attributes:
        outcome: How the release ended (see ``ReleaseOutcome``).
        failed: Whether the run ends Failed (every outcome but ``released`` and ``no-op``).
        failed_at: The stage that stopped a failed release.
        production_before: The version production served when the run started.
        production_after: The version production serves now (None: empty).
        problems: Cleanup steps that failed while ending a release (empty when all held).
    """

    model: str
    version: str
    outcome: ReleaseOutcome
    message: str
    failed: bool = False
    failed_at: ReleaseStage | None = None
    reason: str | None = None
    production_before: str | None = None
    production_after: str | None = None
    image: str | None = None
    endpoint: str | None = None
    smoke_qa: str | None = None
    smoke_production: str | None = None
    problems: tuple[str, ...] = ()


class BuildValidationReport(_Record):
    """The conclusion of a build validation: which checks failed, and whether it published.

    Attributes:
        checks: One-line summary per check, by check name.
        published: None when publishing did not run (checks failed, or ``publish=False``).
    """

    passed: bool
    failing: tuple[str, ...] = ()
    checks: dict[str, str] = {}
    published: bool | None = None


class WatchReport(_Record):
    """One blob-watcher pass: what it listed, announced (oldest first) and forgot."""

    container: str
    listed: int
    announced: list[str]
    reannounced: list[str]
    forgotten: list[str]


MonitoringOutcome = Literal["no data", "too few rows", "no drift", "drift"]


class ColumnDriftRecord(_Record):
    """One column of a monitoring check: reference vs live, the tests, the verdict.

    The fields of ``training.drift.ColumnDrift``, repeated on purpose: importing that module
    here would load scipy and pandas into every flow that reads a result (the release flow
    keeps them out of its start-up).
    """

    column: str
    reference_mean: float
    live_mean: float
    ks_statistic: float
    p_value: float
    psi: float
    drifted: bool


class MonitoringReport(_Record):
    """The conclusion of one monitoring check.

    Attributes:
        outcome: ``no data`` (nothing collected in the window), ``too few rows`` (fewer than
            ``MLOPS_DRIFT_MIN_ROWS``: no verdict), ``no drift`` or ``drift``.
        inputs_valid: Whether the window passed the ``scoring_inputs`` suite (None: not run).
        prediction_drift: None when the model version has no prediction reference yet.
        live_rmse: Error of the predictions labelled in this check (None: no new labels).
        labelled_data: Landing blobs written from newly joined labels.
    """

    environment: str
    outcome: MonitoringOutcome
    message: str
    checked_at: str
    window_start: str
    window_end: str
    rows: int = 0
    model_versions: tuple[str, ...] = ()
    inputs_valid: bool | None = None
    validation: str | None = None
    data_docs: str | None = None
    features: tuple[ColumnDriftRecord, ...] = ()
    prediction: ColumnDriftRecord | None = None
    drifted_features: tuple[str, ...] = ()
    prediction_drift: bool | None = None
    live_rmse: float | None = None
    live_mae: float | None = None
    labelled_rows: int = 0
    labelled_data: tuple[str, ...] = ()

    @property
    def drifted(self) -> bool:
        return self.outcome == "drift"


BatchOutcome = Literal["scored", "failed"]


class BatchScoringReport(_Record):
    """The conclusion of one batch-scoring run.

    Attributes:
        outcome: ``scored`` (predictions and lineage are in the lake) or ``failed`` (nothing
            complete was written; the input stays where it was).
        output_uri: The folder holding ``predictions.<format>`` and ``lineage.json``.
        lineage: The job's lineage record (model, input, output, times), as written.
    """

    model: str
    version: str
    outcome: BatchOutcome
    message: str
    input_uri: str
    output_uri: str
    job_id: str | None = None
    rows: int | None = None
    seconds: float | None = None
    predictions_uri: str | None = None
    lineage: dict[str, object] | None = None
