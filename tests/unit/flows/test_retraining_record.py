"""The retraining flow judges by the job's decision record and never unpickles job output."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import pytest

from backends import Backends
from backends.local.memory_compute import InProcessCompute
from core.interfaces import TrainingJobSpec
from core.results import RetrainingSummary
from core.settings import Settings
from flows.outcome import result_of
from flows.retraining import retraining
from training.artifacts import DECISION_FILE, MODEL_FILE, sha256_file
from training.decision import read_record
from training.params import GateConfig, TrainingParams

DATA = Path(__file__).resolve().parents[2] / "data"


class WatchedCompute(InProcessCompute):
    """Counts model loads inside the job (``submit`` runs it) and outside it (the worker)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.in_job = False
        self.loads = {"job": 0, "worker": 0}

    def submit(self, spec: TrainingJobSpec) -> str:
        self.in_job = True
        try:
            return super().submit(spec)
        finally:
            self.in_job = False


@pytest.fixture
def watched(backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backends:
    compute = WatchedCompute(backends.datalake, tmp_path / "watched-jobs")
    real_load = joblib.load

    def load(*args: Any, **kwargs: Any) -> Any:
        compute.loads["job" if compute.in_job else "worker"] += 1
        if not compute.in_job:
            raise AssertionError("the worker unpickled a model")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(joblib, "load", load)
    return replace(backends, compute=compute)


def run(backends: Backends, **kwargs: Any) -> RetrainingSummary:
    state = retraining(resources=backends, return_state=True, **kwargs)
    summary = result_of(state, RetrainingSummary)
    assert state.is_completed() and summary is not None, state
    return summary


def test_the_worker_judges_by_the_record_and_never_unpickles(
    watched: Backends, settings: Settings, tmp_path: Path
) -> None:
    compute = watched.compute
    assert isinstance(compute, WatchedCompute)
    watched.datalake.ensure_containers(settings.landing_container)
    name = "diabetes_batch_b.csv"
    blob = (DATA / "good" / name).read_bytes()
    watched.datalake.put(settings.landing_container, name, blob)
    assert run(watched).version == "1"  # no champion yet: nothing loaded anywhere
    assert compute.loads == {"job": 0, "worker": 0}
    watched.registry.set_alias(settings.model_name, "production", "1")

    # Any score is a tie the challenger wins: registered, whatever the two models score.
    gate = GateConfig(tie_tolerance=1e6, tie_policy="prefer_challenger")
    summary = run(watched, params=TrainingParams(seed=7), gate=gate)

    assert compute.loads == {"job": 1, "worker": 0}  # the champion, inside the job
    (spec,) = compute.submitted[1:]
    assert spec.champion is not None and spec.champion.version == "1"
    record = read_record(tmp_path / "watched-jobs" / "inproc-2" / "decision" / DECISION_FILE)
    decision = summary.decision
    assert decision is not None and decision.champion_version == "1"
    assert record.champion is not None and decision.champion == record.champion.metrics
    assert decision.challenger == record.challenger
    # Registered from the job's output folder, with the digest the job recorded.
    assert decision.verdict == "register" and summary.version == "2"
    version = watched.registry.get(settings.model_name, "2")
    assert version.sha256 == record.challenger_sha256
    job_output = tmp_path / "watched-jobs" / "inproc-2" / "outputs" / MODEL_FILE
    assert sha256_file(job_output) == record.challenger_sha256
