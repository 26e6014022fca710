"""``training.train --mlflow`` logs the holdout metrics to MLflow (how an Azure ML sweep reads
each trial's objective), and only when asked: MLflow's local file store is the real backend
here. Also ``--hyperparameter``, how a sweep hands each trial its values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from training.data import reference_dataset
from training.params import TrainingParams
from training.train import main, with_hyperparameters

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "diabetes.csv"
    reference_dataset().to_csv(path, index=False)
    return path


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file store as the tracking URI (as Azure ML sets MLFLOW_TRACKING_URI in a job)."""
    root = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", root.as_uri())
    # MLflow 3 keeps the file store only on request (a database is its default now).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return root


def logged_runs(store: Path) -> list[dict[str, float]]:
    client = mlflow.tracking.MlflowClient(tracking_uri=store.as_uri())
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments]) if experiments else []
    return [dict(run.data.metrics) for run in runs]


def test_mlflow_flag_logs_the_holdout_metrics(data: Path, tmp_path: Path, store: Path) -> None:
    out = tmp_path / "out"

    assert main(["--data", str(data), "--output", str(out), "--mlflow"]) == 0

    written = json.loads((out / "metrics.json").read_text())
    (metrics,) = logged_runs(store)
    assert metrics == {name: pytest.approx(written[name]) for name in ("rmse", "mae", "r2")}
    assert mlflow.active_run() is None  # the run was ended, not left open


def test_without_the_flag_nothing_is_logged_or_imported(
    data: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # an import now fails

    assert main(["--data", str(data), "--output", str(tmp_path / "out")]) == 0

    assert not store.exists()


def test_the_flag_without_mlflow_fails_the_run(
    data: Path,
    tmp_path: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)

    assert main(["--data", str(data), "--output", str(tmp_path / "out"), "--mlflow"]) == 2
    assert "--mlflow needs mlflow" in capsys.readouterr().err


def test_hyperparameters_are_set_on_top_of_the_params(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--data", str(data), "--output", str(out), "--params", '{"seed": 7}']

    assert main([*argv, "--hyperparameter", "alpha=0.25"]) == 0

    run = json.loads((out / "run.json").read_text())
    assert run["params"]["seed"] == 7
    assert run["params"]["hyperparameters"]["alpha"] == 0.25


def test_hyperparameter_values_are_json_else_text() -> None:
    base = TrainingParams()
    assert with_hyperparameters(base, []) is base
    assert with_hyperparameters(base, ["alpha=2"]).hyperparameters["alpha"] == 2
    with pytest.raises(ValueError, match="NAME=VALUE"):
        with_hyperparameters(base, ["alpha"])
    with pytest.raises(ValueError, match="invalid hyperparameters"):
        with_hyperparameters(base, ["alpha=much"])
