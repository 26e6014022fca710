"""The rules that conclude a run, without Prefect: every retraining and release outcome."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core import outcomes
from core.interfaces import ModelVersion
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
