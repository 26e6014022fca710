"""Tasks over the model registry: look up, fetch the champion, register, announce."""

from __future__ import annotations

import json

from prefect import task
from prefect.cache_policies import NONE

from core import judgements
from core.events import challenger_rejected, model_registered
from core.interfaces import ModelInput, ModelRegistry, ModelVersion
from core.judgements import Judgement
from core.lake import Lake
from core.outcomes import ANNOUNCED_TAG, needs_announcement
from core.version import code_version
from tasks.events import emit, send_events
from training.artifacts import MODEL_FILE
from training.gate_models import Decision
from training.params import TrainingParams


@task(name="find-trained-version", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def find_trained_version(
    registry: ModelRegistry, name: str, fingerprint: str, params_digest: str
) -> ModelVersion | None:
    """A version already trained on exactly this data with these parameters (replay guard)."""
    found = registry.find(name, {"data_fingerprint": fingerprint, "params_digest": params_digest})
    return found[-1] if found else None


@task(name="find-champion", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def find_champion(registry: ModelRegistry, name: str) -> ModelInput | None:
    """The production model as a job input (the job scores it); None before any release."""
    champion = registry.get_alias(name, "production")
    return ModelInput.of(champion) if champion is not None else None


def registration_tags(
    fingerprint: str,
    data_uri: str,
    params: TrainingParams,
    decision: Decision,
    job_id: str,
    flow_run_id: str,
) -> dict[str, str]:
    """What a registered version records: its data, code, estimator, parameters, metrics, run
    and decision."""
    return {
        "data_fingerprint": fingerprint,
        "data_uri": data_uri,
        # On its own (it is also in "params") so versions can be found by estimator.
        "estimator": params.estimator,
        "params": json.dumps(params.model_dump(mode="json"), sort_keys=True),
        "params_digest": params.digest(),
        "code_version": code_version(),
        "flow_run_id": flow_run_id,
        "training_job": job_id,
        "metrics": decision.challenger.model_dump_json(),
        "decision": decision.model_dump_json(),
    }


@task(name="current-champion", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def current_champion(registry: ModelRegistry, name: str) -> str | None:
    """The version the ``production`` alias names (None before any release)."""
    champion = registry.get_alias(name, "production")
    return champion.version if champion else None


@task(name="register-model", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def register_model(
    registry: ModelRegistry, name: str, output_uri: str, sha256: str, tags: dict[str, str]
) -> ModelVersion:
    """Register the challenger from the job's model output, with the digest the job
    recorded, and point the ``candidate`` alias at it.

    Idempotent: a version with the same data fingerprint and parameters digest is the one
    registered by an earlier try (the alias failed after the version was created), so a
    retry or a rerun points the alias at it instead of registering a second version.
    """
    same = {"data_fingerprint": tags["data_fingerprint"], "params_digest": tags["params_digest"]}
    found = registry.find(name, same)
    if found:
        version = found[0]
    else:
        version = registry.register_output(name, output_uri, MODEL_FILE, sha256, tags)
    registry.set_alias(name, "candidate", version.version)
    return registry.get(name, version.version)


@task(name="unannounced-version", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def unannounced_version(registry: ModelRegistry, trained: ModelVersion) -> ModelVersion | None:
    """``trained`` if its announcement never got through (``needs_announcement``), made the
    candidate if the run that registered it died before the alias; else None."""
    if trained.tags.get(ANNOUNCED_TAG) == "true":
        return None
    versions = registry.list_versions(trained.name)
    if not needs_announcement(trained, versions[-1].version if versions else None):
        return None
    if "candidate" not in trained.aliases:  # finish the registration the dead run began
        registry.set_alias(trained.name, "candidate", trained.version)
    return registry.get(trained.name, trained.version)


@task(name="announce-model", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def announce_model(
    registry: ModelRegistry, version: ModelVersion, flow_run_id: str, released: bool = False
) -> None:
    """Send ``mlops.model.registered`` (the release deployment's trigger unless ``released``:
    the run released it itself) and wait until the server took it: unlike ``emit_event``, a
    lost event fails the task. Then tag the version ``announced``: a version without the tag
    was never announced (nor released by its run), and a rerun announces it."""
    send_events([model_registered(version, flow_run_id, released)])
    registry.set_tags(version.name, version.version, {ANNOUNCED_TAG: "true"})


@task(name="find-judgement", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def find_judgement(lake: Lake, fingerprint: str, params_digest: str) -> Judgement | None:
    """A remembered rejection of a challenger on this data with these parameters."""
    return judgements.find(lake, fingerprint, params_digest)


@task(name="remember-judgement", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def remember_judgement(lake: Lake, judgement: Judgement) -> Judgement:
    return judgements.remember(lake, judgement)


@task(name="announce-rejection", cache_policy=NONE)
def announce_rejection(name: str, decision: Decision) -> None:
    """Emit ``mlops.challenger.rejected`` with the decision record (automations notify)."""
    emit(challenger_rejected(name, decision))
