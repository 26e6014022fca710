"""The rules that conclude a run, without Prefect: every retraining and release outcome."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core import outcomes
from core.interfaces import ModelVersion
from core.judgements import Judgement
from core.lake import CuratedSet
from core.results import FileResult, RetrainingSummary
from training.evaluate import Metrics, decide
from training.params import GateConfig

CURATED = CuratedSet("memory://datalake/curated/training/data.parquet", "f" * 64, 442, ("a",))
MERGED = FileResult(file="a.csv", result="merged", details="442 rows")
BAD = FileResult(file="b.csv", result="quarantined", details="b.csv: 3 expectations failed")
V = ModelVersion("m", "4", "file:///r", "0" * 64)


def _decision(challenger_rmse: float, champion_rmse: float | None) -> object:
    challenger = Metrics(rmse=challenger_rmse, mae=1, r2=0.5, n=80)
    champion = None if champion_rmse is None else Metrics(rmse=champion_rmse, mae=1, r2=0.5, n=80)
    return decide(challenger, champion, GateConfig(), champion_version="3" if champion else None)


@pytest.mark.parametrize(
    ("files", "curated", "trained", "outcome", "failed"),
    [
        ([BAD], CURATED, None, "data rejected", True),
        ([BAD], None, None, "data rejected", True),
        ([], None, None, "no data", False),
        ([MERGED], CURATED, V, "up to date", False),
        ([], CURATED, V, "up to date", False),
    ],
)
def test_runs_that_train_nothing(
    files: list[FileResult],
    curated: CuratedSet | None,
    trained: ModelVersion | None,
    outcome: str,
    failed: bool,
) -> None:
    summary = outcomes.retraining_without_training("m", files, curated, trained)
    assert summary is not None
    assert (summary.outcome, summary.failed) == (outcome, failed)
    if outcome == "up to date":
        assert summary.version == "4" and summary.data_fingerprint == "f" * 64


@pytest.mark.parametrize("files", [[MERGED], [], [MERGED, BAD]])
def test_new_or_changed_data_needs_training(files: list[FileResult]) -> None:
    assert outcomes.retraining_without_training("m", files, CURATED, None) is None


def test_a_registered_challenger_names_its_version_and_the_reason() -> None:
    decision = _decision(50.0, 55.0)
    summary = outcomes.retraining_after_gate("m", [MERGED, BAD], CURATED, "job-1", decision, V)  # type: ignore[arg-type]
    assert summary.outcome == "registered" and summary.version == "4"
    assert summary.message.startswith("Registered m v4 (alias candidate). challenger is better")
    assert summary.failed and summary.quarantined == (BAD,)
    assert outcomes.retraining_state_message(summary) == (
        "1 file(s) quarantined: b.csv: 3 expectations failed"
    )


def test_a_rejected_challenger_keeps_the_gate_reason() -> None:
    decision = _decision(60.0, 55.0)
    summary = outcomes.retraining_after_gate("m", [MERGED], CURATED, "job-1", decision, None)  # type: ignore[arg-type]
    assert summary.outcome == "challenger rejected" and summary.version is None
    assert summary.message == decision.reason  # type: ignore[attr-defined]
    assert outcomes.retraining_state_message(summary) == summary.message


def test_an_outcome_outside_the_set_is_refused() -> None:
    with pytest.raises(ValidationError):
        RetrainingSummary(model="m", outcome="maybe", message="?")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "registry", "serving", "no_op"),
    [
        ("2", "2", "2", True),
        ("2", "2", None, False),
        ("2", "1", "2", False),
        ("2", None, None, False),
    ],
)
def test_a_no_op_needs_the_registry_and_the_live_service_to_agree(
    version: str, registry: str | None, serving: str | None, no_op: bool
) -> None:
    assert outcomes.release_is_no_op(version, registry, serving) is no_op


@pytest.mark.parametrize(
    ("stage", "serving", "before", "outcome", "words"),
    [
        ("qa", "1", "1", "rejected in QA", "failed QA (boom); production unchanged."),
        ("approval", "1", "1", "not approved", "was not approved (boom); production unchanged."),
        (
            "production",
            "1",
            "1",
            "rolled back",
            "failed in production (boom); production serves v1.",
        ),
        ("production", None, None, "rolled back", "production is empty (first release)."),
    ],
)
def test_every_failed_release_ends_the_same_way(
    stage: str, serving: str | None, before: str | None, outcome: str, words: str
) -> None:
    report = outcomes.release_stopped("m", "2", before, stage, "boom", serving)  # type: ignore[arg-type]
    assert report.outcome == outcome and report.failed and report.failed_at == stage
    assert report.message.endswith(words)
    assert report.production_after == serving
    assert outcomes.stop_rejects_version(stage) is (stage != "approval")


def test_cleanup_problems_are_named_and_an_unchecked_production_is_not_called_empty() -> None:
    report = outcomes.release_stopped(
        "m", "2", "1", "production", "boom", None, problems=["check production: refused"]
    )
    assert "production did not answer as expected" in report.message
    assert report.message.endswith("Cleanup problems: check production: refused.")


def test_released_and_no_op() -> None:
    released = outcomes.release_released("m", "2", "1", "img", "http://h", "qa ok", "prod ok")
    assert (released.outcome, released.failed, released.production_after) == (
        "released",
        False,
        "2",
    )
    assert released.message == "m v2 is in production at http://h/score"
    no_op = outcomes.release_no_op("m", "2")
    assert (no_op.outcome, no_op.failed) == ("no-op", False)


# --------------------------------------------------------------------------- issue 8
def _judged(champion: str | None = "3") -> Judgement:
    challenger = Metrics(rmse=60.0, mae=1, r2=0.5, n=80)
    champ = Metrics(rmse=55.0, mae=1, r2=0.5, n=80)
    decision = decide(challenger, champ, GateConfig(), champion_version=champion)
    gate = GateConfig().model_dump(mode="json")
    return Judgement("f" * 64, "d" * 16, gate, decision, "2024-01-01T00:00:00+00:00")


def test_a_remembered_rejection_concludes_already_judged() -> None:
    gate = GateConfig().model_dump(mode="json")
    judged = _judged()
    summary = outcomes.retraining_without_training("m", [], CURATED, None, judged, "3", gate)
    assert summary is not None and summary.outcome == "already judged"
    assert summary.decision == judged.decision and not summary.failed
    assert judged.decision.reason in summary.message and "Nothing trained" in summary.message


@pytest.mark.parametrize(
    ("champion", "gate"),
    [("4", GateConfig()), ("3", GateConfig(min_improvement=0.5))],
    ids=["another champion", "another gate"],
)
def test_a_rejection_against_another_champion_or_gate_is_judged_again(
    champion: str, gate: GateConfig
) -> None:
    judged = _judged()
    assert not outcomes.judgement_holds(judged, champion, gate.model_dump(mode="json"))
    gate_json = gate.model_dump(mode="json")
    summary = outcomes.retraining_without_training(
        "m", [], CURATED, None, judged, champion, gate_json
    )
    assert summary is None


def test_only_the_unannounced_candidate_is_announced_again() -> None:
    candidate = ModelVersion("m", "4", "file:///r", "0" * 64, aliases=("candidate",))
    announced = ModelVersion(
        "m", "4", "file:///r", "0" * 64, {outcomes.ANNOUNCED_TAG: "true"}, ("candidate",)
    )
    superseded = ModelVersion("m", "3", "file:///r", "0" * 64)
    assert outcomes.needs_announcement(candidate)
    assert not outcomes.needs_announcement(announced)
    assert not outcomes.needs_announcement(superseded)  # announcing it would release it
    assert not outcomes.needs_announcement(superseded, newest="4")
    # The newest version, no alias yet: its run died between creating it and the alias.
    assert outcomes.needs_announcement(superseded, newest="3")
    released = ModelVersion("m", "3", "file:///r", "0" * 64, {"release.status": "rejected"})
    assert not outcomes.needs_announcement(released, newest="3")  # released by hand
    summary = outcomes.retraining_without_training("m", [], CURATED, candidate)
    assert summary is not None
    again = outcomes.retraining_reannounced(summary)
    assert again.outcome == "up to date" and "announced it again" in again.message


def test_files_the_run_failed_on_fail_it_and_are_named() -> None:
    crashed = FileResult(file="p.csv", result="failed", details="attempt 1 of 3 failed: boom")
    dead = FileResult(file="q.csv", result="dead-lettered", details="3 attempt(s) failed")
    summary = outcomes.retraining_without_training("m", [crashed, dead, BAD], CURATED, V)
    assert summary is not None and summary.outcome == "data rejected" and summary.failed
    assert summary.crashed == (crashed, dead)
    assert outcomes.retraining_state_message(summary) == (
        "1 file(s) quarantined: b.csv: 3 expectations failed | 2 file(s) failed: "
        "p.csv: failed: attempt 1 of 3 failed: boom; q.csv: dead-lettered: 3 attempt(s) failed"
    )
    with_good = outcomes.retraining_without_training("m", [MERGED, crashed], CURATED, V)
    assert with_good is not None and with_good.outcome == "up to date" and with_good.failed


# --------------------------------------------------------------------------- batch scoring
def test_a_batch_job_with_lineage_scored_its_rows() -> None:
    lineage = {"input": {"rows": 5000}, "output": {"uri": "lake/x.predictions/predictions.csv"}}
    report = outcomes.batch_report(
        "m", "2", "lake/x.csv", "lake/x.predictions/", 1.23456, job_id="j1", lineage=lineage
    )
    assert (report.outcome, report.rows, report.job_id, report.seconds) == (
        "scored",
        5000,
        "j1",
        1.235,
    )
    assert report.predictions_uri == "lake/x.predictions/predictions.csv"
    assert report.lineage == lineage
    assert report.message == "scored 5000 rows of lake/x.csv with m v2"


def test_a_batch_job_without_lineage_failed_and_says_why() -> None:
    problem = RuntimeError("batch job j1 failed: no column s1")
    report = outcomes.batch_report(
        "m", "2", "lake/x.csv", "lake/x.predictions/", 0.5, problem=problem
    )
    assert (report.outcome, report.rows, report.lineage, report.predictions_uri) == (
        "failed",
        None,
        None,
        None,
    )
    assert report.message == "batch scoring of lake/x.csv failed: batch job j1 failed: no column s1"
