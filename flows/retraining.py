"""Retraining: new data -> validate -> curate -> train -> champion vs challenger -> register.

Only composition lives here; every step is a task in ``tasks/``.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

from prefect import flow, get_run_logger
from prefect.runtime import deployment, flow_run
from prefect.states import State

from backends import Backends
from core import dead_letter as dl
from core.interfaces import BlobRef, ConflictError, ModelInput, NotFoundError, TrainingJobSpec
from core.judgements import Judgement
from core.lake import CuratedSet, Lake
from core.outcomes import (
    retraining_after_gate,
    retraining_reannounced,
    retraining_state_message,
    retraining_without_training,
)
from core.paths import scratch_dir
from core.results import FileResult, RetrainingSummary
from core.settings import Settings, get_settings
from expectations.gx_runner import ValidationSession
from flows.outcome import completed, failed
from flows.release import release
from flows.resources import default_backends
from tasks.data import (
    begin_attempt,
    clear_attempts,
    current_curated_set,
    dead_letter_file,
    download_file,
    fail_attempt,
    find_new_data,
    merge_into_curated,
    prune_attempts,
    quarantine_file,
    withdraw_attempt,
)
from tasks.locks import model_lock
from tasks.registry import (
    announce_model,
    announce_rejection,
    current_champion,
    find_champion,
    find_judgement,
    find_trained_version,
    register_model,
    registration_tags,
    remember_judgement,
    unannounced_version,
)
from tasks.reporting import publish_retraining_report
from tasks.sweep import sweep_on_compute
from tasks.training import judge_challenger, train_on_compute
from tasks.validation import publish_data_docs_index, suite_for, validate_data
from training.params import GateConfig, TrainingParams
from training.sweep import SweepConfig

MAX_ROUNDS = 5


@flow(name="retraining", log_prints=False)
def retraining(
    data_uri: str | None = None,
    params: TrainingParams | None = None,
    gate: GateConfig | None = None,
    model_name: str | None = None,
    drain_landing: bool = False,
    resources: Backends | None = None,
    sweep: SweepConfig | None = None,
) -> State[RetrainingSummary]:
    """Retrain the model on new data and register it if it beats the production model.

    Args:
        data_uri: One landing blob (URL or ``landing/<name>``); default: everything in landing.
        params: Training hyperparameters (defaults from ``TrainingParams``).
        gate: Champion/challenger promotion rules (defaults from ``GateConfig``).
        model_name: Registered model name; default from settings.
        drain_landing: With ``data_uri``, also take every other file waiting in landing (event
            triggered runs: the blob may already have been taken by an earlier run).
        resources: The data lake, compute and registry to work with; default: those of the
            settings' profile (tests hand in-memory ones).
        sweep: A hyperparameter grid over ``params``: its trials run as parallel training
            jobs and the best one is the challenger (default: one job with ``params``).
    """
    logger = get_run_logger()
    settings = get_settings()
    backends = resources or default_backends(settings)
    params = params or TrainingParams()
    gate = gate or GateConfig()
    name = model_name or settings.model_name
    lake = Lake.of(backends.datalake, settings)

    # Drain landing: files that land while this run works are picked up before it ends, so a
    # burst of arrivals needs one run, not one per file (bounded; (name, etag) never twice).
    files: list[FileResult] = []
    seen: set[tuple[str, str]] = set()
    validation = ValidationSession()  # the run's files share one GX context
    batch = find_new_data(lake, data_uri, drain_landing)
    for _ in range(MAX_ROUNDS):
        for ref in batch:
            seen.add((ref.name, ref.etag))
            result = _take(lake, ref, settings, validation)
            if result is not None:
                files.append(result)
        if data_uri is not None and not drain_landing:
            break
        batch = [r for r in find_new_data(lake, None) if (r.name, r.etag) not in seen]
        if not batch:
            break
    prune_attempts(lake)
    if files:
        publish_data_docs_index(validation, settings.data_docs_path)

    # Training, judging and registering never overlap for one model (tasks/locks.py): a
    # second run waits, then finds the same data "up to date" or "already judged".
    # Releasing here saves the release trigger, a pickup and a process (settings say when).
    # Only a deployment run on the profile's own resources does: a test or a CLI run leaves
    # the release to the event, as before.
    inline = bool(settings.releases_in_retraining and resources is None and deployment.id)
    with model_lock(name, "retraining"):
        summary = _train_and_judge(
            lake, backends, settings, name, files, params, gate, sweep, announce=not inline
        )
    if inline and summary.outcome == "registered" and summary.version is not None:
        # After the lock: a retraining run queued meanwhile need not wait for the release.
        # Announced (labelled released) only once the release ended: a run killed before
        # leaves the version unannounced, and a rerun announces it for the release deployment.
        released = release(model_name=name, version=summary.version, return_state=True)
        logger.info("release of v%s: %s", summary.version, released.message)
        version = backends.registry.get(name, summary.version)
        announce_model(backends.registry, version, str(flow_run.id), released=True)

    publish_retraining_report(summary)
    message = retraining_state_message(summary)
    if summary.failed:
        logger.error(message)
        return failed(message, summary)
    logger.info(message)
    return completed(message, summary)


def _train_and_judge(
    lake: Lake,
    backends: Backends,
    settings: Settings,
    name: str,
    files: list[FileResult],
    params: TrainingParams,
    gate: GateConfig,
    sweep: SweepConfig | None = None,
    announce: bool = True,
) -> RetrainingSummary:
    """Train a challenger on the curated set unless it was trained or judged before;
    ``announce``: announce a registered version (False: the caller releases it first)."""
    curated = current_curated_set(lake)
    # The job scores the champion too, on its own holdout: the worker reads only its record.
    champion_input = swept = None
    if sweep is not None and curated is not None:
        # The best trial's parameters become the run's: the replay guards below judge them.
        champion_input = find_champion(backends.registry, name)
        swept = sweep_on_compute(
            backends.compute,
            _job_spec(name, curated, params, champion_input),
            params,
            sweep,
            gate.primary_metric,
            settings.compute_timeout_seconds,
            scratch_dir(settings.jobs_path, "sweep-"),
        )
        params = TrainingParams.model_validate(swept.record.params)
    trained = judged = champion = None
    if curated is not None:
        trained = find_trained_version(
            backends.registry, name, curated.fingerprint, params.digest()
        )
        judged = find_judgement(lake, curated.fingerprint, params.digest())
        champion = current_champion(backends.registry, name) if judged else None
    gate_json = gate.model_dump(mode="json")
    summary = retraining_without_training(
        name, files, curated, trained, judged, champion, gate_json
    )
    if summary is not None:
        if summary.outcome == "up to date" and trained:
            pending = unannounced_version(backends.registry, trained)
            if pending is not None:  # registered by a run that died before announcing it
                announce_model(backends.registry, pending, str(flow_run.id))
                summary = retraining_reannounced(summary)
        return summary
    assert curated is not None  # retraining_without_training concludes when it is None
    if swept is not None:
        job = swept
    else:
        champion_input = find_champion(backends.registry, name)
        spec = _job_spec(name, curated, params, champion_input)
        workdir = scratch_dir(settings.jobs_path, "retrain-")
        job = train_on_compute(
            backends.compute, spec, settings.compute_timeout_seconds, workdir / "record"
        )
    job_id = job.job_id
    decision = judge_challenger(
        job.record,
        gate,
        curated.fingerprint,
        params.digest(),
        champion_input.version if champion_input else None,
    )
    registered = None
    if decision.verdict == "register":
        tags = registration_tags(
            curated.fingerprint, curated.data_uri, params, decision, job_id, str(flow_run.id)
        )
        registered = register_model(
            backends.registry, name, job.output_uri, job.record.challenger_sha256, tags
        )
        if announce:
            announce_model(backends.registry, registered, str(flow_run.id))
    else:
        # Remembered before announcing: a duplicate event or the next cron run on this data
        # concludes "already judged" instead of training and notifying again.
        remember_judgement(
            lake, Judgement(curated.fingerprint, params.digest(), gate_json, decision)
        )
        announce_rejection(name, decision)
    return retraining_after_gate(name, files, curated, job_id, decision, registered)


def _job_spec(
    name: str, curated: CuratedSet, params: TrainingParams, champion: ModelInput | None
) -> TrainingJobSpec:
    return TrainingJobSpec(
        data_uri=curated.data_uri,
        params=params.model_dump(mode="json"),
        experiment=name,
        display_name=f"{name} on {curated.fingerprint[:12]}",
        champion=champion,
    )


def _take(
    lake: Lake, ref: BlobRef, settings: Settings, validation: ValidationSession
) -> FileResult | None:
    """Curate one landing file, counting the attempt: a file that makes the run fail (not its
    validation) ``max_file_attempts`` times moves to the dead-letter container. None: another
    run took the file first, or it was uploaded again meanwhile (the next round takes that)."""
    attempts = begin_attempt(lake, ref)
    if attempts.count > settings.max_file_attempts:  # earlier runs died on it without a word
        return _dead_letter(lake, ref, attempts)
    try:
        result = _curate(lake, ref, settings, validation)
    except Exception as exc:  # any failure on this file: the others are still taken
        # A lost race (another run took it, or it was uploaded again) is not the file's
        # fault: the attempt is taken back and the next round sees the new state.
        if isinstance(exc, ConflictError | NotFoundError) and withdraw_attempt(lake, ref):
            return None
        attempts = fail_attempt(lake, ref, f"{type(exc).__name__}: {exc}")
        if attempts.count >= settings.max_file_attempts:
            return _dead_letter(lake, ref, attempts)
        return FileResult(
            file=ref.name,
            result="failed",
            details=f"attempt {attempts.count} of {settings.max_file_attempts} failed: "
            f"{type(exc).__name__}: {str(exc)[:300]}",
        )
    clear_attempts(lake, ref)
    return result


def _dead_letter(lake: Lake, ref: BlobRef, attempts: dl.Attempts) -> FileResult:
    where = dead_letter_file(lake, ref, attempts)
    return FileResult(
        file=ref.name,
        result="dead-lettered",
        details=dl.reason(attempts)[:500],
        dead_lettered_as=where,
    )


def _curate(
    lake: Lake, ref: BlobRef, settings: Settings, validation: ValidationSession
) -> FileResult:
    """Validate one landing file, then merge it into the curated set or quarantine it."""
    too_large = lake.too_large(ref)
    if too_large:  # quarantined unread: reading it could take the run down with it
        where = quarantine_file(lake, ref, too_large, {"size": ref.size, "limit": lake.max_bytes})
        return FileResult(
            file=ref.name, result="quarantined", details=too_large, quarantined_as=where
        )
    # Streamed to local disk, validated and merged chunk by chunk: memory does not grow
    # with the file (in Azure this belongs on the AML cluster, behind the same tasks).
    with TemporaryDirectory(prefix="landing-") as folder:
        copy = download_file(lake, ref, Path(folder))
        ref = copy.ref
        # Labelled rows the monitoring flow wrote skip the distribution bounds (drift).
        report = validate_data(
            copy.path, ref.name, settings.data_docs_path, suite_for(copy), validation
        )
        docs = settings.data_docs_link(report.data_docs)
        if report.success:
            merged = merge_into_curated(lake, copy)
            return FileResult(
                file=ref.name,
                result="merged" if merged.merged else "replay",
                details=f"{report.rows} rows, {report.suite} suite"
                + ("" if merged.merged else " (already merged)"),
                data_docs=docs,
            )
    where = quarantine_file(lake, ref, report.summary(), report.to_dict())
    return FileResult(
        file=ref.name,
        result="quarantined",
        details=report.summary(),
        data_docs=docs,
        quarantined_as=where,
    )
