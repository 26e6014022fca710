"""How a run ends: the rules that turn what a retraining, release or batch-scoring run saw
into its result.

Pure functions over plain values, so every outcome is tested without Prefect or a backend;
the flows only decide which steps to run and hand what they saw to these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.interfaces import ModelVersion
from core.results import (
    TAKEN,
    BatchScoringReport,
    FileResult,
    ReleaseReport,
    ReleaseStage,
    RetrainingSummary,
)
from training.gate_models import Decision

if TYPE_CHECKING:  # annotations only: the release flow imports this module without pandas
    from core.judgements import Judgement
    from core.lake import CuratedSet

# The registry tag set on a version once ``mlops.model.registered`` was accepted for it.
ANNOUNCED_TAG = "announced"


# --------------------------------------------------------------------------- retraining
def retraining_without_training(
    model: str,
    files: Sequence[FileResult],
    curated: CuratedSet | None,
    trained: ModelVersion | None,
    judged: Judgement | None = None,
    champion: str | None = None,
    gate: dict[str, Any] | None = None,
) -> RetrainingSummary | None:
    """The run's result when nothing needs training; None when a challenger must be trained.

    Args:
        model: Registered model name.
        files: What became of each landing file taken by the run.
        curated: The curated training set after the merge (None: there is none yet).
        trained: A version already trained on exactly this data with these parameters.
        judged: A remembered rejection of a challenger on this data with these parameters.
        champion: The production version now (a rejection against another one is stale).
        gate: The gate now (``GateConfig.model_dump(mode="json")``): another gate, another
            question.
    """
    base = _summary(model, files, curated)
    if base.failed and not any(f.result in TAKEN for f in files):
        return _with(
            base,
            {
                "outcome": "data rejected",
                "message": "Nothing trained: no file passed validation.",
            },
        )
    if curated is None:
        return base
    if trained is not None:
        return _with(
            base,
            {
                "outcome": "up to date",
                "message": f"{model} v{trained.version} was already trained on this exact data "
                "with these parameters: nothing to do.",
                "version": trained.version,
            },
        )
    if judged is not None and judgement_holds(judged, champion, gate):
        return _with(
            base,
            {
                "outcome": "already judged",
                "message": f"A challenger on this exact data with these parameters was "
                f"rejected at {judged.decided_at or 'an earlier run'}: "
                f"{judged.decision.reason} Nothing trained.",
                "decision": judged.decision,
            },
        )
    return None


def judgement_holds(judged: Judgement, champion: str | None, gate: dict[str, Any] | None) -> bool:
    """A remembered rejection still answers the question: same champion, same gate."""
    return judged.decision.verdict == "reject" and (
        judged.champion_version == champion and (gate is None or judged.gate == gate)
    )


def needs_announcement(version: ModelVersion, newest: str | None = None) -> bool:
    """A version whose announcement never got through: announce it again, or it is never
    released. Either it is the candidate (the run stopped between registering and
    announcing), or it is the ``newest`` version and no alias or release has touched it (the
    run stopped between creating the version and pointing the candidate alias at it: the
    rerun finishes that registration). An older version that is not the candidate was
    superseded: announcing it now would release it."""
    if version.tags.get(ANNOUNCED_TAG) == "true":
        return False
    if "candidate" in version.aliases:
        return True
    untouched = not version.aliases and "release.status" not in version.tags
    return untouched and version.version == newest


def retraining_reannounced(summary: RetrainingSummary) -> RetrainingSummary:
    """``summary`` (up to date) noting that its version was announced again."""
    message = summary.message + " Its announcement had been lost: announced it again."
    return _with(summary, {"message": message})


def retraining_after_gate(
    model: str,
    files: Sequence[FileResult],
    curated: CuratedSet,
    job_id: str,
    decision: Decision,
    registered: ModelVersion | None,
) -> RetrainingSummary:
    """The run's result once the challenger was trained and judged.

    Args:
        registered: The version registered when the gate said ``register``, else None.
    """
    update: dict[str, object] = {"job_id": job_id, "decision": decision}
    if registered is None:
        update |= {"outcome": "challenger rejected", "message": decision.reason}
    else:
        update |= {
            "outcome": "registered",
            "message": f"Registered {model} v{registered.version} (alias candidate). "
            + decision.reason,
            "version": registered.version,
        }
    return _with(_summary(model, files, curated), update)


def retraining_state_message(summary: RetrainingSummary) -> str:
    """What the run's state says: the files it quarantined or failed on, else its message."""
    parts = []
    if summary.quarantined:
        bad = summary.quarantined
        parts.append(f"{len(bad)} file(s) quarantined: " + "; ".join(f.details for f in bad))
    if summary.crashed:
        bad = summary.crashed
        parts.append(
            f"{len(bad)} file(s) failed: "
            + "; ".join(f"{f.file}: {f.result}: {f.details}" for f in bad)
        )
    return " | ".join(parts) or summary.message


def _with(summary: RetrainingSummary, update: dict[str, object]) -> RetrainingSummary:
    """``summary`` with ``update`` applied, validated again (an outcome outside the Literal,
    or a wrong type, raises here instead of reaching a report)."""
    return RetrainingSummary.model_validate({**dict(summary), **update})


def _summary(
    model: str, files: Sequence[FileResult], curated: CuratedSet | None
) -> RetrainingSummary:
    """What every outcome records: the files, whether one was quarantined, and the data."""
    return RetrainingSummary(
        model=model,
        outcome="no data",
        message="No curated training data yet: nothing trained.",
        failed=any(f.result not in TAKEN for f in files),
        files=tuple(files),
        data_fingerprint=curated.fingerprint if curated else None,
        curated_rows=curated.rows if curated else None,
        data_uri=curated.data_uri if curated else None,
    )


# --------------------------------------------------------------------------- release
_STOPPED = {"qa": "rejected in QA", "approval": "not approved", "production": "rolled back"}


def release_is_no_op(version: str, registry_production: str | None, serving: str | None) -> bool:
    """Nothing to do: the registry and the live production environment both have ``version``."""
    return registry_production == version and serving == version


def stop_rejects_version(stage: ReleaseStage) -> bool:
    """A failed QA or production stage rejects the version; a missing approval does not."""
    return stage != "approval"


def release_no_op(model: str, version: str) -> ReleaseReport:
    return ReleaseReport(
        model=model,
        version=version,
        outcome="no-op",
        message=f"{model} v{version} is already in production: nothing to do.",
        production_before=version,
        production_after=version,
    )


def release_released(
    model: str,
    version: str,
    before: str | None,
    image: str,
    endpoint: str,
    smoke_qa: str | None,
    smoke_production: str | None,
) -> ReleaseReport:
    return ReleaseReport(
        model=model,
        version=version,
        outcome="released",
        message=f"{model} v{version} is in production at {endpoint}/score",
        production_before=before,
        production_after=version,
        image=image,
        endpoint=endpoint,
        smoke_qa=smoke_qa,
        smoke_production=smoke_production,
    )


def release_stopped(
    model: str,
    version: str,
    before: str | None,
    stage: ReleaseStage,
    reason: str,
    serving: str | None,
    *,
    image: str | None = None,
    smoke_qa: str | None = None,
    smoke_production: str | None = None,
    problems: Sequence[str] = (),
) -> ReleaseReport:
    """The one ending of every failed release: which stage stopped it, and what serves now.

    Args:
        before: The version production served when the release started.
        stage: The stage that stopped it.
        reason: Why, in words (the smoke test's summary, an error).
        serving: The version production serves after cleanup (None: empty).
        problems: Cleanup steps that failed; named in the message, never hidden.
    """
    if stage == "production":
        if any(problem.startswith("check production") for problem in problems):
            now = "production did not answer as expected"
        elif serving is not None:
            now = f"production serves v{serving}"
        else:
            now = "production is empty" + (" (first release)" if before is None else "")
        message = f"{model} v{version} failed in production ({reason}); {now}."
    elif stage == "approval":
        message = f"{model} v{version} passed QA but was not approved ({reason}); production "
        message += "unchanged."
    else:
        message = f"{model} v{version} failed QA ({reason}); production unchanged."
    if problems:
        message += " Cleanup problems: " + "; ".join(problems) + "."
    return ReleaseReport(
        model=model,
        version=version,
        outcome=_STOPPED[stage],  # type: ignore[arg-type]
        message=message,
        failed=True,
        failed_at=stage,
        reason=reason,
        production_before=before,
        production_after=serving,
        image=image,
        smoke_qa=smoke_qa,
        smoke_production=smoke_production,
        problems=tuple(problems),
    )


# --------------------------------------------------------------------------- batch scoring
def batch_report(
    model: str,
    version: str,
    input_uri: str,
    output_uri: str,
    seconds: float,
    *,
    job_id: str | None = None,
    lineage: Mapping[str, Any] | None = None,
    problem: object = None,
) -> BatchScoringReport:
    """The one ending of a batch-scoring run: ``scored`` when the job's lineage was
    collected, else ``failed`` (the job wrote nothing complete; the input stays put).

    Args:
        lineage: The job's ``lineage.json`` (its ``input.rows`` and ``output.uri`` are read).
        problem: Why the job failed (its exception), when there is no lineage.
    """
    common: dict[str, Any] = {
        "model": model,
        "version": version,
        "input_uri": input_uri,
        "output_uri": output_uri,
        "seconds": round(seconds, 3),
        "job_id": job_id,
    }
    if lineage is None:
        message = f"batch scoring of {input_uri} failed: {problem}"
        return BatchScoringReport(outcome="failed", message=message, **common)
    rows = int(lineage["input"]["rows"])
    return BatchScoringReport(
        outcome="scored",
        message=f"scored {rows} rows of {input_uri} with {model} v{version}",
        rows=rows,
        predictions_uri=lineage["output"]["uri"],
        lineage=dict(lineage),
        **common,
    )
