"""Every outcome of the retraining flow, on in-memory backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends import Backends
from core.results import RetrainingSummary
from core.settings import Settings
from flows.outcome import result_of
from flows.retraining import retraining
from training.params import GateConfig, TrainingParams

DATA = Path(__file__).resolve().parents[2] / "data"


def land(backends: Backends, settings: Settings, *files: str) -> None:
    backends.datalake.ensure_containers(settings.landing_container)
    for file in files:
        backends.datalake.put(
            settings.landing_container, Path(file).name, (DATA / file).read_bytes()
        )


def run(backends: Backends, **kwargs: Any) -> tuple[Any, RetrainingSummary]:
    state = retraining(resources=backends, return_state=True, **kwargs)
    summary = result_of(state, RetrainingSummary)
    assert summary is not None, state
    return state, summary


def landing(backends: Backends, settings: Settings) -> list[str]:
    return [r.name for r in backends.datalake.list(settings.landing_container)]


def test_new_data_registers_the_first_model(backends: Backends, settings: Settings) -> None:
    land(backends, settings, "good/diabetes_batch_b.csv")
    state, summary = run(backends)

    assert state.is_completed(), state.message
    assert summary.outcome == "registered" and summary.version == "1"
    assert [(f.file, f.result) for f in summary.files] == [("diabetes_batch_b.csv", "merged")]
    assert summary.decision is not None and summary.decision.verdict == "register"
    assert summary.curated_rows == 442 and summary.data_fingerprint
    candidate = backends.registry.get_alias(settings.model_name, "candidate")
    assert candidate is not None and candidate.version == "1"
    assert candidate.tags["data_fingerprint"] == summary.data_fingerprint
    assert landing(backends, settings) == []  # taken, not left to be trained on again


def test_then_up_to_date_then_a_challenger_that_misses_the_gate(
    backends: Backends, settings: Settings
) -> None:
    """One landing file, three runs: registered, up to date, challenger rejected (sharing the
    first run keeps these tests in seconds: validation is the slow step)."""
    land(backends, settings, "good/diabetes_batch_b.csv")
    assert run(backends)[1].outcome == "registered"

    state, summary = run(backends)  # nothing new landed: the curated set is unchanged
    assert state.is_completed()
    assert summary.outcome == "up to date" and summary.version == "1"
    assert summary.decision is None and summary.files == ()

    backends.registry.set_alias(settings.model_name, "production", "1")
    # Other parameters (so not "up to date"), and a gate no model can pass against a champion.
    gate = GateConfig(min_improvement=10)
    state, summary = run(backends, params=TrainingParams(seed=7), gate=gate)
    assert state.is_completed()
    assert summary.outcome == "challenger rejected" and summary.version is None
    assert summary.decision is not None and summary.decision.champion_version == "1"
    assert summary.message == summary.decision.reason
    assert [v.version for v in backends.registry.list_versions(settings.model_name)] == ["1"]


def test_only_bad_data_is_rejected_and_quarantined(backends: Backends, settings: Settings) -> None:
    land(backends, settings, "bad/missing_column.csv")
    state, summary = run(backends)

    assert state.is_failed()
    assert summary.outcome == "data rejected" and summary.failed
    (bad,) = summary.files
    assert bad.result == "quarantined" and bad.quarantined_as
    assert state.message.startswith("1 file(s) quarantined: ")
    quarantined = [r.name for r in backends.datalake.list(settings.quarantine_container)]
    assert any(name.endswith("missing_column.csv") for name in quarantined)
    assert any(name.endswith(".reason.json") for name in quarantined)
    assert backends.registry.list_versions(settings.model_name) == []


def test_nothing_landed_and_nothing_curated_is_no_data(
    backends: Backends, settings: Settings
) -> None:
    state, summary = run(backends)
    assert state.is_completed()
    assert summary.outcome == "no data" and summary.files == ()


def test_good_and_bad_files_register_but_the_run_fails(
    backends: Backends, settings: Settings
) -> None:
    land(backends, settings, "good/diabetes_batch_b.csv", "bad/out_of_range.csv")
    state, summary = run(backends)

    assert state.is_failed()  # a quarantined file always fails the run, so someone looks
    assert summary.outcome == "registered" and summary.version == "1" and summary.failed
    assert sorted(f.result for f in summary.files) == ["merged", "quarantined"]
