"""Retraining: new data -> validate -> curate -> train -> champion vs challenger -> register.

Only composition lives here; every step is a task in ``tasks/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import State

from backends import get_backends
from core.interfaces import BlobRef, TrainingJobSpec
from core.lake import Lake
from core.paths import scratch_dir
from core.settings import get_settings
from flows.outcome import completed, failed
from tasks.data import (
    current_curated_set,
    find_new_data,
    load_curated_set,
    merge_into_curated,
    quarantine_file,
    read_blob,
)
from tasks.registry import (
    announce_model,
    announce_rejection,
    fetch_champion,
    find_trained_version,
    register_model,
    registration_tags,
)
from tasks.reporting import publish_retraining_report
from tasks.training import evaluate_challenger, holdout_split, train_on_compute
from tasks.validation import validate_data
from training.params import GateConfig, TrainingParams

MAX_ROUNDS = 5


@flow(name="retraining", log_prints=False)
def retraining(
    data_uri: str | None = None,
    params: TrainingParams | None = None,
    gate: GateConfig | None = None,
    model_name: str | None = None,
    drain_landing: bool = False,
) -> State[dict[str, Any]]:
    """Retrain the model on new data and register it if it beats the production model.

    Args:
        data_uri: One landing blob (URL or ``landing/<name>``); default: everything in landing.
        params: Training hyperparameters (defaults from ``TrainingParams``).
        gate: Champion/challenger promotion rules (defaults from ``GateConfig``).
        model_name: Registered model name; default from settings.
        drain_landing: With ``data_uri``, also take every other file waiting in landing (event
            triggered runs: the blob may already have been taken by an earlier run).
    """
    logger = get_run_logger()
    settings = get_settings()
    backends = get_backends(settings)
    params = params or TrainingParams()
    gate = gate or GateConfig()
    name = model_name or settings.model_name
    lake = Lake.of(backends.datalake, settings)
    summary: dict[str, Any] = {"model": name, "files": []}
    rejected: list[str] = []

    # Drain landing: files that land while this run works are picked up before it ends, so a
    # burst of arrivals needs one run, not one per file (bounded; (name, etag) never twice).
    seen: set[tuple[str, str]] = set()
    batch = find_new_data(lake, data_uri, drain_landing)
    for _ in range(MAX_ROUNDS):
        for ref in batch:
            seen.add((ref.name, ref.etag))
            entry = _curate(lake, ref, settings.data_docs_path)
            entry["data_docs"] = settings.data_docs_link(entry["data_docs"])
            summary["files"].append(entry)
            if entry["result"] == "quarantined":
                rejected.append(entry["details"])
        if data_uri is not None and not drain_landing:
            break
        batch = [r for r in find_new_data(lake, None) if (r.name, r.etag) not in seen]
        if not batch:
            break

    curated = current_curated_set(lake)
    decision = None
    accepted = any(f["result"] != "quarantined" for f in summary["files"])
    if rejected and not accepted:
        summary |= {
            "outcome": "data rejected",
            "message": "Nothing trained: no file passed validation.",
        }
    elif curated is None:
        summary |= {
            "outcome": "no data",
            "message": "No curated training data yet: nothing trained.",
        }
    else:
        summary |= {
            "data_fingerprint": curated.fingerprint,
            "curated_rows": curated.rows,
            "data_uri": curated.data_uri,
        }
        existing = find_trained_version(
            registry=backends.registry,
            name=name,
            fingerprint=curated.fingerprint,
            params_digest=params.digest(),
        )
        if existing is not None:
            summary |= {
                "outcome": "up to date",
                "version": existing.version,
                "message": f"{name} v{existing.version} was already trained on this exact "
                "data with these parameters: nothing to do.",
            }
        else:
            workdir = scratch_dir(settings.jobs_path, "retrain-")
            spec = TrainingJobSpec(
                data_uri=curated.data_uri,
                params=params.model_dump(mode="json"),
                experiment=name,
                display_name=f"{name} on {curated.fingerprint[:12]}",
            )
            job_id, challenger_dir = train_on_compute(
                backends.compute, spec, settings.compute_timeout_seconds, workdir / "challenger"
            )
            champion, champion_dir = fetch_champion(backends.registry, name, workdir / "champion")
            holdout = holdout_split(load_curated_set(lake, curated), params)
            decision = evaluate_challenger(
                challenger_dir, champion_dir, champion.version if champion else None, holdout, gate
            )
            summary["job_id"] = job_id
            if decision.verdict == "register":
                tags = registration_tags(
                    curated.fingerprint,
                    curated.data_uri,
                    params,
                    decision,
                    job_id,
                    str(flow_run.id),
                )
                version = register_model(backends.registry, name, challenger_dir, tags)
                announce_model(version, str(flow_run.id))
                summary |= {
                    "outcome": "registered",
                    "version": version.version,
                    "message": f"Registered {name} v{version.version} (alias candidate). "
                    + decision.reason,
                }
            else:
                announce_rejection(name, decision)
                summary |= {"outcome": "challenger rejected", "message": decision.reason}

    publish_retraining_report(summary, decision)
    if rejected:
        message = f"{len(rejected)} file(s) quarantined: " + "; ".join(rejected)
        logger.error(message)
        return failed(message, summary)
    logger.info(summary["message"])
    return completed(summary["message"], summary)


def _curate(lake: Lake, ref: BlobRef, docs_dir: Path) -> dict[str, Any]:
    """Validate one landing file, then merge it into the curated set or quarantine it."""
    blob, ref = read_blob(lake, ref)
    report, frame = validate_data(blob, ref.name, docs_dir)
    entry: dict[str, Any] = {"file": ref.name, "data_docs": report.data_docs}
    if report.success and frame is not None:
        merged = merge_into_curated(lake, ref, blob, frame)
        return entry | {
            "result": "merged" if merged.merged else "replay (already merged)",
            "details": f"{len(frame)} rows",
        }
    where = quarantine_file(lake, ref, report.summary(), report.to_dict())
    return entry | {"result": "quarantined", "details": report.summary(), "quarantined_as": where}
