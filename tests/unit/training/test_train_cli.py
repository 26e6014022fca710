"""``python -m training.train`` end to end: artifacts, determinism and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import model as model_io
from training.artifacts import (
    DECISION_FILE,
    GOLDEN_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    read_golden,
    sha256_file,
)
from training.data import fingerprint, reference_dataset, split
from training.decision import read_record
from training.evaluate import score
from training.params import TrainingParams
from training.schema import COLUMNS, FEATURES, TARGET
from training.train import PINNED_PACKAGES, main

FrameFactory = Callable[..., pd.DataFrame]  # the make_frame fixture (conftest.py)
REPO_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = {MODEL_FILE, METRICS_FILE, RUN_FILE, GOLDEN_FILE}


@pytest.fixture
def reference_csv(tmp_path: Path) -> Path:
    path = tmp_path / "diabetes.csv"
    reference_dataset().to_csv(path, index=False)
    return path


def _argv(data: Path, out: Path, params: str | None = None) -> list[str]:
    extra = [] if params is None else ["--params", params]
    return ["--data", str(data), "--output", str(out), *extra]


def _read(directory: Path, name: str) -> dict:
    return json.loads((directory / name).read_text())


def test_main_writes_all_artifacts(reference_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(_argv(reference_csv, out)) == 0
    assert {p.name for p in out.iterdir()} == ARTIFACTS

    metrics = _read(out, "metrics.json")
    assert set(metrics) == {"rmse", "mae", "r2", "n", "n_train", "n_holdout"}
    assert metrics["n_train"] + metrics["n_holdout"] == 442
    assert metrics["n"] == metrics["n_holdout"]
    assert 45.0 < metrics["rmse"] < 65.0 and metrics["mae"] < metrics["rmse"]
    assert 0.3 < metrics["r2"] < 0.7

    run = _read(out, "run.json")
    assert run["estimator"] == "ridge"
    assert run["params"] == TrainingParams().model_dump(mode="json")
    assert run["params"]["hyperparameters"] == {"alpha": 0.5, "fit_intercept": True}
    assert run["params_digest"] == TrainingParams().digest()
    assert run["data_fingerprint"] == fingerprint(reference_dataset())
    assert run["features"] == list(FEATURES) and run["target"] == TARGET
    assert run["n_rows"] == 442
    assert run["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert set(run["versions"]) == set(PINNED_PACKAGES)

    golden = _read(out, "golden.json")
    assert set(golden) == {"data", "predictions"}
    assert len(golden["data"]) == len(golden["predictions"]) == 20
    assert all(len(row) == len(FEATURES) for row in golden["data"])
    # The saved model reproduces the golden predictions (up to BLAS rounding, a few ulp):
    # the scoring smoke test relies on this.
    loaded = model_io.load(out)
    np.testing.assert_allclose(
        model_io.predict(loaded, np.array(golden["data"])), golden["predictions"], rtol=1e-12
    )
    # Golden rows come from the holdout, not from the training rows.
    holdout_check = pd.DataFrame(golden["data"], columns=list(FEATURES))
    assert len(holdout_check.merge(reference_dataset(), on=list(FEATURES))) == 20


def test_params_from_file_and_parquet_input(tmp_path: Path, make_frame: FrameFactory) -> None:
    data = tmp_path / "batch.parquet"
    make_frame(40).to_parquet(data, index=False)
    params = tmp_path / "params.json"
    params.write_text(
        json.dumps({"hyperparameters": {"alpha": 0.1}, "holdout_fraction": 0.25, "seed": 3})
    )
    out = tmp_path / "out"
    assert main(_argv(data, out, str(params))) == 0
    run = _read(out, "run.json")
    assert run["params"]["hyperparameters"]["alpha"] == 0.1 and run["params"]["seed"] == 3
    assert model_io.load(out).alpha == 0.1
    golden = _read(out, "golden.json")
    assert len(golden["data"]) == _read(out, "metrics.json")["n_holdout"] < 20


def test_module_runs_as_subprocess_deterministically(reference_csv: Path, tmp_path: Path) -> None:
    outputs = [tmp_path / "run1", tmp_path / "run2"]
    for out in outputs:
        completed = subprocess.run(
            [sys.executable, "-m", "training.train", "--data", str(reference_csv),
             "--output", str(out), "--params", '{"hyperparameters": {"alpha": 0.5}}'],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        assert "rmse=" in completed.stderr  # logging goes to stderr
        assert completed.stdout == ""
    for name in ("metrics.json", "run.json", "golden.json"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
    assert 45.0 < _read(outputs[0], "metrics.json")["rmse"] < 65.0


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty"),
        ("header.csv", ",".join(COLUMNS).encode() + b"\n", "no data rows"),
        ("garbage.csv", bytes(range(256)), "not a CSV file"),
        ("partial.csv", b"age,sex\n1,2\n3,4\n", "missing columns"),
        ("words.csv", ",".join(COLUMNS).encode() + b"\n" + b"a," * 10 + b"b\n", "non-numeric"),
    ],
)
def test_bad_data_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, message: str
) -> None:
    data = _write(tmp_path, name, content)
    assert main(_argv(data, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("training: error:") and message in err
    assert not (tmp_path / "out").exists()


def test_missing_data_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.csv"
    assert main(_argv(missing, tmp_path / "out")) == 2
    assert f"cannot read {missing}" in capsys.readouterr().err


def test_too_few_rows_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_frame: FrameFactory
) -> None:
    data = tmp_path / "tiny.csv"
    make_frame(3).to_csv(data, index=False)
    assert main(_argv(data, tmp_path / "out")) == 2
    assert "at least 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"alpha": ', "Expecting value"),
        ('{"alpah": 1.0}', "alpah"),
        ('{"alpha": 0.5}', "alpha"),  # hyperparameters live under "hyperparameters"
        ('{"hyperparameters": {"alpha": -1}}', "ridge hyperparameter 'alpha'"),
        ('{"hyperparameters": {"alpah": 1}}', "ridge has no hyperparameter 'alpah'"),
        ('{"estimator": "svm"}', "unknown estimator 'svm'"),
        ('{"estimator": "random_forest", "hyperparameters": {"alpha": 1}}', "random_forest"),
        ("[1, 2]", "must be a JSON object"),
        ("missing-params.json", "cannot read missing-params.json"),
    ],
)
def test_bad_params_exit_2(
    reference_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    params: str,
    message: str,
) -> None:
    assert main(_argv(reference_csv, tmp_path / "out", params)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1  # one line, no traceback


def test_params_file_that_is_not_an_object_exits_2(
    reference_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _write(tmp_path, "params.json", b"[1, 2]")
    assert main(_argv(reference_csv, tmp_path / "out", str(params))) == 2
    assert "must be a JSON object" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output", "somewhere"]) == 2
    assert "--data" in capsys.readouterr().err


def test_a_non_linear_estimator_end_to_end(reference_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = {"estimator": "random_forest", "hyperparameters": {"n_estimators": 20}, "seed": 5}
    assert main(_argv(reference_csv, out, json.dumps(params))) == 0
    assert {p.name for p in out.iterdir()} == ARTIFACTS

    run = _read(out, RUN_FILE)
    assert run["estimator"] == "random_forest"
    assert run["params"] == TrainingParams.model_validate(params).model_dump(mode="json")
    assert run["params"]["hyperparameters"] == {
        "n_estimators": 20,
        "max_depth": None,
        "min_samples_leaf": 1,
    }
    loaded = model_io.load(out)
    assert type(loaded).__name__ == "RandomForestRegressor"
    assert (loaded.n_estimators, loaded.random_state) == (20, 5)
    assert 0.2 < _read(out, METRICS_FILE)["r2"] < 0.7
    golden = read_golden(out, len(FEATURES))
    np.testing.assert_allclose(
        model_io.predict(loaded, np.array(golden.rows)), golden.predictions, rtol=1e-12
    )


def _with_champion(argv: list[str], decision: Path, champion: Path, sha256: str) -> list[str]:
    return argv + [
        "--decision", str(decision), "--champion", str(champion),
        "--champion-version", "3", "--champion-sha256", sha256,
    ]  # fmt: skip


def test_main_scores_the_champion_on_the_same_holdout(reference_csv: Path, tmp_path: Path) -> None:
    champion = tmp_path / "champion"
    assert main(_argv(reference_csv, champion, '{"seed": 7}')) == 0  # another split, another fit
    out, decision = tmp_path / "out", tmp_path / "decision"
    argv = _argv(reference_csv, out)

    assert main(_with_champion(argv, decision, champion, sha256_file(champion / MODEL_FILE))) == 0

    assert {p.name for p in out.iterdir()} == ARTIFACTS  # the record lies apart
    record = read_record(decision / DECISION_FILE)
    _, holdout = split(reference_dataset(), 0.2, 42)
    assert (record.holdout_fingerprint, record.holdout_rows) == (fingerprint(holdout), len(holdout))
    assert record.champion is not None and record.champion.version == "3"
    assert record.champion.metrics == score(model_io.load(champion), holdout)
    assert record.champion.trained_with == _read(champion, RUN_FILE)["versions"]
    metrics = _read(out, METRICS_FILE)
    assert record.challenger.model_dump() == {k: metrics[k] for k in ("rmse", "mae", "r2", "n")}
    assert record.challenger_sha256 == sha256_file(out / MODEL_FILE)
    assert record.data_fingerprint == _read(out, RUN_FILE)["data_fingerprint"]


def test_a_champion_other_than_the_registered_one_exits_2(
    reference_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    champion = tmp_path / "champion"
    assert main(_argv(reference_csv, champion)) == 0
    out, decision = tmp_path / "out", tmp_path / "decision"

    code = main(_with_champion(_argv(reference_csv, out), decision, champion, "0" * 64))

    assert code == 2
    assert "champion 3: model.joblib has sha256" in capsys.readouterr().err
    assert not out.exists() and not decision.exists()
