"""Metrics and every branch of the promotion gate."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from training import model as model_io
from training.evaluate import Metrics, compute_metrics, decide, score
from training.params import GateConfig, TrainingParams

FrameFactory = Callable[..., pd.DataFrame]  # the make_frame fixture (conftest.py)


def m(rmse: float = 50.0, mae: float = 40.0, r2: float = 0.5, n: int = 100) -> Metrics:
    return Metrics(rmse=rmse, mae=mae, r2=r2, n=n)


# --- metrics ------------------------------------------------------------------------


def test_compute_metrics_known_values() -> None:
    # errors: 0, 0, 2, -2 -> MSE 2, MAE 1; y mean 2.5, SST 5, SSE 8 -> R² = 1 - 8/5.
    metrics = compute_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 1.0, 6.0]))
    assert metrics.rmse == pytest.approx(math.sqrt(2.0))
    assert metrics.mae == pytest.approx(1.0)
    assert metrics.r2 == pytest.approx(-0.6)
    assert metrics.n == 4


def test_compute_metrics_perfect_prediction() -> None:
    metrics = compute_metrics(pd.Series([1.0, 5.0, 9.0]), pd.Series([1.0, 5.0, 9.0]))
    assert (metrics.rmse, metrics.mae, metrics.r2) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [([1.0, 2.0], [1.0], "shape"), ([1.0], [1.0], "at least 2"), ([], [], "at least 2")],
)
def test_compute_metrics_rejects(y_true: list[float], y_pred: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(np.array(y_true), np.array(y_pred))


def test_metrics_refuse_nan_and_negative_errors() -> None:
    with pytest.raises(ValidationError):
        m(r2=float("nan"))
    with pytest.raises(ValidationError):
        m(rmse=-1.0)


def test_score_matches_compute_metrics(make_frame: FrameFactory) -> None:
    train, holdout = make_frame(60, seed=1), make_frame(20, seed=2)
    model = model_io.fit(train, TrainingParams())
    expected = compute_metrics(holdout["target"], model_io.predict(model, holdout))
    assert score(model, holdout) == expected
    assert score(model, holdout).n == 20


# --- decide -------------------------------------------------------------------------


def test_first_run_registers() -> None:
    decision = decide(m(rmse=55.0), None, GateConfig())
    assert decision.verdict == "register"
    assert "first model" in decision.reason
    assert decision.champion is None and decision.improvement is None


def test_below_floor_rejects_on_first_run() -> None:
    decision = decide(m(r2=0.1), None, GateConfig(quality_floor=0.2))
    assert decision.verdict == "reject"
    assert "quality floor" in decision.reason and "0.1" in decision.reason


def test_below_floor_rejects_even_if_better_than_champion() -> None:
    decision = decide(m(rmse=10.0, r2=0.15), m(rmse=90.0, r2=0.05), GateConfig())
    assert decision.verdict == "reject"
    assert "quality floor" in decision.reason


def test_floor_for_lower_is_better_metric() -> None:
    gate = GateConfig(quality_floor_metric="rmse", quality_floor=60.0)
    assert decide(m(rmse=60.0), None, gate).verdict == "register"  # on the floor passes
    decision = decide(m(rmse=60.5), None, gate)
    assert decision.verdict == "reject" and "at most 60" in decision.reason


def test_floor_for_r2_is_inclusive() -> None:
    assert decide(m(r2=0.2), None, GateConfig(quality_floor=0.2)).verdict == "register"


def test_better_challenger_registers() -> None:
    decision = decide(m(rmse=50.0), m(rmse=55.0), GateConfig(), champion_version="3")
    assert decision.verdict == "register"
    assert decision.improvement == pytest.approx(5.0 / 55.0)
    assert decision.champion_version == "3"
    assert "50" in decision.reason and "55" in decision.reason and "version 3" in decision.reason


def test_worse_challenger_rejects() -> None:
    decision = decide(m(rmse=56.0), m(rmse=55.0), GateConfig())
    assert decision.verdict == "reject"
    assert decision.improvement == pytest.approx(-1.0 / 55.0)
    assert "not better" in decision.reason


@pytest.mark.parametrize(
    ("policy", "verdict"), [("keep_champion", "reject"), ("prefer_challenger", "register")]
)
def test_tie_follows_policy(policy: str, verdict: str) -> None:
    gate = GateConfig.model_validate({"tie_policy": policy, "tie_tolerance": 1e-6})
    decision = decide(m(rmse=55.0 + 5e-7), m(rmse=55.0), gate)
    assert decision.verdict == verdict
    assert "tie" in decision.reason


def test_tie_beats_min_improvement() -> None:
    # An exact tie under prefer_challenger registers even with a margin required.
    gate = GateConfig(tie_policy="prefer_challenger", min_improvement=0.05)
    assert decide(m(rmse=55.0), m(rmse=55.0), gate).verdict == "register"


def test_just_outside_tolerance_is_not_a_tie() -> None:
    gate = GateConfig(tie_policy="prefer_challenger", tie_tolerance=1e-6)
    decision = decide(m(rmse=55.0 + 1e-5), m(rmse=55.0), gate)
    assert decision.verdict == "reject" and "tie" not in decision.reason


@pytest.mark.parametrize(
    ("challenger_rmse", "verdict"),
    [(98.9, "register"), (99.0, "register"), (99.1, "reject")],  # 1.1 %, 1.0 %, 0.9 %
)
def test_min_improvement_margin(challenger_rmse: float, verdict: str) -> None:
    gate = GateConfig(min_improvement=0.01)
    decision = decide(m(rmse=challenger_rmse), m(rmse=100.0), gate)
    assert decision.verdict == verdict
    if verdict == "reject":
        assert "too small" in decision.reason


@pytest.mark.parametrize(
    ("challenger_r2", "verdict", "sign"), [(0.6, "register", 1), (0.4, "reject", -1)]
)
def test_r2_higher_is_better(challenger_r2: float, verdict: str, sign: int) -> None:
    gate = GateConfig(primary_metric="r2")
    decision = decide(m(r2=challenger_r2), m(r2=0.5), gate)
    assert decision.verdict == verdict
    assert decision.improvement == pytest.approx(sign * 0.2)


def test_mae_lower_is_better() -> None:
    gate = GateConfig(primary_metric="mae")
    assert decide(m(mae=30.0, rmse=99.0), m(mae=40.0, rmse=10.0), gate).verdict == "register"


def test_zero_champion_score_uses_absolute_gain() -> None:
    gate = GateConfig(primary_metric="r2", quality_floor=-10.0)
    decision = decide(m(r2=0.25), m(r2=0.0), gate)
    assert decision.verdict == "register"
    assert decision.improvement == pytest.approx(0.25)


def test_decision_is_json_serialisable() -> None:
    gate = GateConfig(min_improvement=0.02)
    decision = decide(m(rmse=50.0), m(rmse=55.0), gate, champion_version="7")
    dumped = json.loads(json.dumps(decision.model_dump(mode="json")))
    assert dumped["verdict"] == "register"
    assert dumped["primary_metric"] == "rmse"
    assert dumped["challenger"] == {"rmse": 50.0, "mae": 40.0, "r2": 0.5, "n": 100}
    assert dumped["champion"]["rmse"] == 55.0
    assert dumped["champion_version"] == "7"
    assert dumped["thresholds"] == {
        "min_improvement": 0.02,
        "quality_floor_metric": "r2",
        "quality_floor": 0.2,
        "tie_policy": "keep_champion",
        "tie_tolerance": 1e-9,
    }
