"""Tasks of batch scoring: pick the model, run the job on the backend, publish its outputs."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from core.interfaces import (
    BatchScoring,
    BatchScoringSpec,
    DataLake,
    JobState,
    ModelRegistry,
    ModelVersion,
    NotFoundError,
)
from core.results import BatchScoringReport


class BatchJobFailed(RuntimeError):
    """The batch job ran and failed (bad input, bad model); the message has its log tail."""


def default_output_uri(datalake: DataLake, input_uri: str) -> str:
    """Beside the input: ``<container>/<folder>/<stem>.predictions/``."""
    ref = datalake.ref(input_uri)
    path = PurePosixPath(ref.name)
    return datalake.uri(ref.container, str(path.with_name(f"{path.stem}.predictions")) + "/")


@task(name="resolve-batch-model", cache_policy=NONE)
def resolve_batch_model(registry: ModelRegistry, name: str, version: str | None) -> ModelVersion:
    """The version asked for, or the one the registry's ``production`` alias names."""
    if version:
        return registry.get(name, version)
    production = registry.get_alias(name, "production")
    if production is None:
        raise NotFoundError(f"{name} has no production version: name one (model_version)")
    return production


@task(name="check-batch-input", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def check_batch_input(datalake: DataLake, input_uri: str) -> str:
    """The input blob's URL, after checking it exists (a clear error before any job starts)."""
    ref = datalake.ref(input_uri)
    if not datalake.exists(ref.container, ref.name):
        raise NotFoundError(f"no such blob: {ref.container}/{ref.name}")
    return ref.uri


@task(name="run-batch-job", cache_policy=NONE)
def run_batch_job(batch: BatchScoring, spec: BatchScoringSpec, timeout: float) -> str:
    """Submit the job and wait for it; returns its id. Not retried: a failed job is a result."""
    logger = get_run_logger()
    job_id = batch.submit(spec)
    logger.info("batch job %s submitted (%s)", job_id, batch.status(job_id).url)
    status = batch.wait(job_id, timeout)
    if status.state is not JobState.COMPLETED:
        raise BatchJobFailed(f"batch job {job_id} {status.state.value}: {status.message}")
    return job_id


@task(name="collect-batch-outputs", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def collect_batch_outputs(batch: BatchScoring, job_id: str) -> dict[str, Any]:
    """Predictions, then lineage, into the output folder; returns the lineage."""
    return dict(batch.collect(job_id))


@task(name="publish-batch-report", cache_policy=NONE)
def publish_batch_report(report: BatchScoringReport) -> None:
    """A markdown summary (rows, time, where) and the lineage as a table."""
    lines = [f"# Batch scoring: {report.outcome}", "", report.message, "", "| | |", "|---|---|"]
    for key in ("model", "version", "rows", "seconds", "input_uri", "predictions_uri", "job_id"):
        value = getattr(report, key)
        if value is not None:
            lines.append(f"| {key.replace('_', ' ')} | `{value}` |")
    create_markdown_artifact(
        key="batch-scoring", markdown="\n".join(lines), description=report.message
    )
    if report.lineage:
        rows = [
            {"part": part, "field": field, "value": str(value)}
            for part, fields in report.lineage.items()
            for field, value in (fields.items() if isinstance(fields, dict) else [("", fields)])
        ]
        create_table_artifact(key="batch-lineage", table=rows, description="lineage.json")
