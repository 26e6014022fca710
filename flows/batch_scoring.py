"""Batch scoring: a file of features in the lake -> predictions and lineage beside it.

The model is the production version unless one is named; the job (``training.batch_score``)
runs on the batch backend of the profile, chunk by chunk, so memory does not grow with the
file. Only composition lives here.
"""

from __future__ import annotations

import time

from prefect import flow
from prefect.states import State

from core.interfaces import BatchScoringSpec, ModelInput
from core.outcomes import batch_report
from core.results import BatchScoringReport
from core.settings import get_settings
from flows.outcome import completed, failed
from flows.resources import BatchResources, default_batch_resources
from tasks.batch_scoring import (
    check_batch_input,
    collect_batch_outputs,
    default_output_uri,
    publish_batch_report,
    resolve_batch_model,
    run_batch_job,
)


@flow(name="batch-scoring")
def batch_scoring(
    input_uri: str,
    model_version: str | None = None,
    output_uri: str | None = None,
    model_name: str | None = None,
    output_format: str = "parquet",
    chunk_rows: int | None = None,
    resources: BatchResources | None = None,
) -> State[BatchScoringReport]:
    """Score a lake file of features with a registered model.

    Args:
        input_uri: The CSV or Parquet blob (URL or ``container/name``).
        model_version: The registered version; default: the ``production`` alias.
        output_uri: The lake folder for ``predictions.<format>`` and ``lineage.json``;
            default: ``<input stem>.predictions/`` beside the input.
        model_name: Registered model name; default from settings.
        output_format: ``parquet`` or ``csv``.
        chunk_rows: Rows per chunk; default ``MLOPS_BATCH_CHUNK_ROWS``.
        resources: Lake, registry and batch backend; default: the settings' profile.
    """
    settings = get_settings()
    res = resources or default_batch_resources(settings)
    name = model_name or settings.model_name
    started = time.monotonic()
    version = resolve_batch_model(res.registry, name, model_version)
    source = check_batch_input(res.datalake, input_uri)
    spec = BatchScoringSpec(
        input_uri=source,
        output_uri=output_uri or default_output_uri(res.datalake, source),
        model=ModelInput.of(version),
        chunk_rows=chunk_rows or settings.batch_chunk_rows,
        output_format=output_format,
    )
    job = run_batch_job(res.batch, spec, settings.batch_timeout_seconds, return_state=True)
    job_id, lineage, problem = None, None, None
    if job.is_completed():
        job_id = job.result()
        lineage = collect_batch_outputs(res.batch, job_id)
    else:
        # Bad input or model: the job wrote nothing to the lake and the input stays put.
        problem = job.result(raise_on_failure=False)
    report = batch_report(
        name,
        version.version,
        source,
        spec.output_uri,
        time.monotonic() - started,
        job_id=job_id,
        lineage=lineage,
        problem=problem,
    )
    publish_batch_report(report)
    if report.outcome == "scored":
        return completed(report.message, report)
    return failed(report.message, report)
