"""AmlCompute.sweep against a fake workspace: the sweep job the real SDK PUTs (search space,
sampling, limits, objective, trial command, environment, compute), the best trial the
service names after reading each trial's metric from MLflow, and sweeps that end badly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backends.azure.compute import AmlCompute
from core.interfaces import BackendError, JobState, SweepCompute, SweepSpec, TrainingJobSpec
from tests.utils.aml_sweeps import SweepService
from training.data import reference_dataset
from training.decision import read_record

from .test_aml_compute import DATA, SETTINGS, FakeClock

pytest.importorskip("mlflow")
ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "diabetes.csv"
    reference_dataset().to_csv(path, index=False)
    return path


@pytest.fixture
def compute(aml: Any) -> AmlCompute:
    clock = FakeClock()
    return AmlCompute(aml.client, SETTINGS, ROOT, sleep=clock.sleep, clock=lambda: clock.now)


def request(**space: list[object]) -> SweepSpec:
    job = TrainingJobSpec(
        data_uri=DATA,
        params={"seed": 7},
        experiment="diabetes",
        display_name="retrain",
        tags={"flow_run": "r1"},
    )
    return SweepSpec(job, space, max_trials=3, max_parallel=2, metric="rmse", goal="minimize")


def test_a_sweep_is_one_sweep_job_whose_best_trial_is_the_services(
    aml: Any, compute: AmlCompute, csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = SweepService(aml, csv, tmp_path / "cluster", monkeypatch)
    assert isinstance(compute, SweepCompute)

    run = compute.sweep(request(alpha=[0.01, 10.0, 0.5, 2.0]), timeout=3600)

    assert re.fullmatch(r"sweep-\d{14}-[0-9a-f]{6}", run.sweep_id)
    (put,) = aml.transport.sent("PUT", rf"/workspaces/ws-mlops/jobs/{run.sweep_id}\?api-version=")
    props = put.json()["properties"]
    assert props["jobType"] == "Sweep"
    # Our grid is a grid: each hyperparameter a choice, sampled exhaustively up to the limit.
    assert props["searchSpace"] == {"alpha": ["choice", [[0.01, 10.0, 0.5, 2.0]]]}
    assert props["samplingAlgorithm"] == {"samplingAlgorithmType": "Grid"}
    assert props["limits"] == {
        "jobLimitsType": "Sweep",
        "maxTotalTrials": 3,
        "maxConcurrentTrials": 2,
        "timeout": "PT1H",
    }
    assert props["objective"] == {"goal": "minimize", "primaryMetric": "rmse"}
    trial = props["trial"]
    assert trial["command"] == (
        "python -m training.train --data ${{inputs.data}} --output ${{outputs.model}} "
        """--params '{"seed": 7}' --decision ${{outputs.decision}} --mlflow """
        "--hyperparameter alpha=${{search_space.alpha}}"
    )
    assert trial["environmentId"] == f"{aml.arm}/environments/diabetes-train-env/versions/7"
    assert trial["codeId"].startswith(f"{aml.arm}/codes/")
    assert props["computeId"] == f"{aml.arm}/computes/cpu-cluster"
    assert props["inputs"] == {"data": {"uri": DATA, "jobInputType": "uri_file"}}
    assert set(props["outputs"]) == {"model", "decision"}
    assert (props["experimentName"], props["displayName"]) == ("diabetes", "retrain")
    assert props["tags"] == {"flow_run": "r1"}
    # Three trials ran, each logging its rmse to MLflow; the lowest one is the best.
    assert set(run.trials) == {f"{run.sweep_id}_{i}" for i in range(3)}
    assert all(s.state is JobState.COMPLETED for s in run.trials.values())
    assert run.best == min(service.metrics, key=service.metrics.__getitem__)
    assert service.points[run.best] == {"alpha": 0.01}  # the least regularised fits best
    record = read_record(compute.fetch_record(run.best, tmp_path / "records"))
    assert record.params["hyperparameters"]["alpha"] == 0.01
    assert record.params["seed"] == 7
    assert record.challenger.rmse == pytest.approx(service.metrics[run.best])
    assert compute.output_uri(run.best) == f"azureml://jobs/{run.best}/outputs/model"


def test_failed_trials_are_reported_beside_the_best(
    aml: Any, compute: AmlCompute, csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SweepService(aml, csv, tmp_path / "cluster", monkeypatch, failing=(1,))

    run = compute.sweep(request(alpha=[0.01, 10.0]), timeout=600)

    states = {job: s.state for job, s in sorted(run.trials.items())}
    assert list(states.values()) == [JobState.FAILED, JobState.COMPLETED]
    assert run.best == f"{run.sweep_id}_1"


@pytest.mark.parametrize("final", ["Failed", "Canceled"])
def test_a_sweep_that_does_not_complete_is_an_error(
    aml: Any,
    compute: AmlCompute,
    csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    final: str,
) -> None:
    SweepService(aml, csv, tmp_path / "cluster", monkeypatch, final=final)

    with pytest.raises(BackendError, match=rf"sweep job sweep-\S+ {final.lower()}"):
        compute.sweep(request(alpha=[0.01, 10.0]), timeout=600)
    assert aml.transport.sent("GET", r"/children") == []


def test_a_grid_the_command_line_cannot_carry_is_refused(aml: Any, compute: AmlCompute) -> None:
    with pytest.raises(ValueError, match="not a plain value"):
        compute.sweep(request(solver=["a b"]), timeout=600)
    with pytest.raises(ValueError, match="not a free input name"):
        compute.sweep(request(data=[1]), timeout=600)
    assert aml.transport.requests == []
