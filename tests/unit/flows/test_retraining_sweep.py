"""A sweep in the retraining flow: trials as bounded parallel subprocess jobs, the best one
registered, a table of the trials published."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

import tasks.sweep as sweep_tasks
from backends import Backends
from backends.azure.compute import AmlCompute
from backends.local.compute import SubprocessCompute
from core.interfaces import TrainingJobSpec
from core.results import RetrainingSummary
from core.settings import AzureSettings, Settings
from flows.outcome import result_of
from flows.retraining import retraining
from tasks.sweep import sweep_on_compute
from tasks.training import TrainedChallenger
from tests.utils.aml_sweeps import SweepService
from tests.utils.azure_ml_workspace import fake_workspace
from training.data import reference_dataset
from training.decision import read_record
from training.params import TrainingParams
from training.sweep import SweepConfig

DATA = Path(__file__).resolve().parents[2] / "data"
ROOT = Path(__file__).resolve().parents[3]
AML_DATA = "https://lake.blob.core.windows.net/curated/sets/2026-11/diabetes.csv"


def overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals running at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_the_best_trial_of_a_sweep_becomes_the_challenger(
    backends: Backends, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = tmp_path / "jobs"
    backends = replace(
        backends, compute=SubprocessCompute(jobs, backends.datalake, poll_interval=0.1)
    )
    tables: list[dict[str, Any]] = []
    monkeypatch.setattr(sweep_tasks, "create_table_artifact", lambda **kw: tables.append(kw))
    backends.datalake.ensure_containers(settings.landing_container)
    name = "diabetes_batch_b.csv"
    backends.datalake.put(settings.landing_container, name, (DATA / "good" / name).read_bytes())
    sweep = SweepConfig(space={"alpha": [0.01, 10.0, 0.5]}, max_parallel=2)

    state = retraining(resources=backends, sweep=sweep, return_state=True)

    summary = result_of(state, RetrainingSummary)
    assert state.is_completed() and summary is not None, state
    assert summary.outcome == "registered"
    job_dirs = sorted(jobs.iterdir())
    assert len(job_dirs) == 3  # one job per trial, no extra training of the winner
    records = {d.name: read_record(d / "decision" / "decision.json") for d in job_dirs}
    best_job, best = min(records.items(), key=lambda item: item[1].challenger.rmse)
    version = backends.registry.get(settings.model_name, str(summary.version))
    assert version.tags["training_job"] == best_job
    assert json.loads(version.tags["params"]) == best.params
    assert version.sha256 == best.challenger_sha256
    assert TrainingParams.model_validate(best.params).hyperparameters["alpha"] in (0.01, 10.0, 0.5)
    # At most max_parallel trials ran at once, and they did run side by side.
    statuses = [json.loads((d / "status.json").read_text()) for d in job_dirs]
    spans = [
        (datetime.fromisoformat(s["started_at"]), datetime.fromisoformat(s["ended_at"]))
        for s in statuses
    ]
    assert overlap(spans) == 2
    (table,) = tables
    assert table["key"] == "sweep-trials"
    rows = table["table"]
    assert [row["trial"] for row in rows] == [1, 2, 3]
    assert [row["best"] for row in rows].count("yes") == 1
    assert next(row for row in rows if row["best"] == "yes")["job"] == best_job


def test_on_azure_ml_the_trials_are_one_sweep_job_and_make_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep task on AmlCompute (the fake workspace at the HTTP boundary): one sweep job,
    the service's best trial is the challenger, each trial's record (JSON) fills the table."""
    pytest.importorskip("mlflow")
    aml = fake_workspace(monkeypatch)
    csv = tmp_path / "diabetes.csv"
    reference_dataset().to_csv(csv, index=False)
    service = SweepService(aml, csv, tmp_path / "cluster", monkeypatch, failing=(2,))
    settings = AzureSettings(
        subscription_id="s",
        resource_group="r",
        workspace="w",
        environment="azureml:diabetes-train-env@latest",
    )
    compute = AmlCompute(aml.client, settings, ROOT, sleep=lambda _: None)
    tables: list[dict[str, Any]] = []
    monkeypatch.setattr(sweep_tasks, "create_table_artifact", lambda **kw: tables.append(kw))
    spec = TrainingJobSpec(data_uri=AML_DATA, params={}, experiment="diabetes")
    sweep = SweepConfig(space={"alpha": [0.01, 10.0, 0.5]}, max_parallel=2)

    @flow
    def sweep_flow() -> TrainedChallenger:
        return sweep_on_compute(
            compute, spec, TrainingParams(), sweep, "rmse", 600, tmp_path / "records"
        )

    best = sweep_flow()

    assert len(aml.transport.sent("PUT", r"/jobs/sweep-")) == 1
    assert best.job_id == min(service.metrics, key=service.metrics.__getitem__)
    assert best.output_uri == f"azureml://jobs/{best.job_id}/outputs/model"
    assert best.record.params["hyperparameters"]["alpha"] == 0.01
    (table,) = tables
    rows = table["table"]
    assert [row["best"] == "yes" for row in rows] == [True, False, False]
    assert rows[0]["job"] == best.job_id and json.loads(rows[0]["hyperparameters"])["alpha"] == 0.01
    assert rows[1]["best"].startswith("failed: job ") and rows[1]["rmse"] is None
    assert json.loads(rows[2]["hyperparameters"])["alpha"] == 0.5
    assert rows[2]["rmse"] == round(service.metrics[rows[2]["job"]], 4)
    assert "2 of 3 trials completed; best by rmse" in table["description"]
    assert not aml.transport.unexpected
