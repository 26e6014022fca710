"""``mlops retrain --estimator NAME --param KEY=VALUE``: options to ``TrainingParams``, and
bad ones refused in one line with exit code 2 before anything starts."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import flows.retraining
import mlops.cli as cli
import mlops.runs
from training.params import TrainingParams


class _Started(Exception):
    """Raised by the stand-in flow: the command got as far as running it."""


@pytest.fixture
def flow_params(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Stand-ins for the stack and the flow; returns what the flow was called with."""
    seen: list[Any] = []

    def fake_flow(**kwargs: Any) -> None:
        # Parameters travel as JSON (a deployment run's are JSON too); the flow validates them.
        given = kwargs.get("params")
        seen.append(None if given is None else TrainingParams.model_validate(given))
        raise _Started

    monkeypatch.setattr(cli, "_settings", lambda: object())
    monkeypatch.setattr(cli, "_use_local_prefect", lambda settings: None)
    monkeypatch.setattr(cli, "_require_prefect", lambda settings: None)
    monkeypatch.setattr(cli, "_lake", lambda settings: None)
    monkeypatch.setattr(mlops.runs, "deployment_exists", lambda name: False)  # run in-process
    monkeypatch.setattr(flows.retraining, "retraining", fake_flow)
    return seen


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.app, ["retrain", *args])


def test_estimator_and_params_become_training_params(flow_params: list[Any]) -> None:
    result = invoke(
        "--estimator", "random_forest", "--param", "n_estimators=50", "--param", "max_depth=null"
    )
    assert isinstance(result.exception, _Started), result.output
    assert flow_params == [
        TrainingParams(
            estimator="random_forest", hyperparameters={"n_estimators": 50, "max_depth": None}
        )
    ]


def test_params_alone_apply_to_the_default_estimator(flow_params: list[Any]) -> None:
    result = invoke("--param", "alpha=2", "--param", "fit_intercept=false")
    assert isinstance(result.exception, _Started), result.output
    assert flow_params == [TrainingParams(hyperparameters={"alpha": 2.0, "fit_intercept": False})]


def test_no_options_leave_the_flow_its_defaults(flow_params: list[Any]) -> None:
    assert isinstance(invoke().exception, _Started)
    assert flow_params == [None]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--estimator", "xgboost"], "unknown estimator 'xgboost': choose one of ridge,"),
        (["--estimator", "ridge", "--param", "depth=3"], "ridge has no hyperparameter 'depth'"),
        (["--estimator", "random_forest", "--param", "n_estimators=0"], "'n_estimators'"),
        (["--param", "alpha=abc"], "ridge hyperparameter 'alpha'"),
        (["--param", "alpha"], "expected KEY=VALUE"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    flow_params: list[Any], args: list[str], message: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert flow_params == []  # nothing ran
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrain: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_alpha_is_gone() -> None:
    result = invoke("--alpha", "0.5")
    assert result.exit_code == 2 and "No such option" in result.output
