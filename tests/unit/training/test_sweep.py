"""Sweep trials (the grid over the base parameters) and the choice of the best one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.utils.records import decision_record as record
from tests.utils.records import metrics
from training.params import TrainingParams
from training.sweep import SweepConfig, best_trial


def test_trials_are_the_grid_on_top_of_the_base_parameters() -> None:
    base = TrainingParams(seed=5, hyperparameters={"alpha": 2.0})
    sweep = SweepConfig(space={"fit_intercept": [True, False], "alpha": [0.1, 1.0]})

    trials = sweep.trials(base)

    assert [(t.hyperparameters["alpha"], t.hyperparameters["fit_intercept"]) for t in trials] == [
        (0.1, True), (0.1, False), (1.0, True), (1.0, False),
    ]  # fmt: skip
    assert all(t.seed == 5 and t.estimator == "ridge" for t in trials)
    assert len({t.digest() for t in trials}) == 4
    assert SweepConfig(space={"alpha": [0.1, 0.2, 0.3]}, max_trials=2).trials(base)[-1] == (
        TrainingParams(seed=5, hyperparameters={"alpha": 0.2})
    )


def test_a_trial_the_estimator_refuses_is_named() -> None:
    with pytest.raises(ValueError, match="sweep trial 2: .*alpha"):
        SweepConfig(space={"alpha": [0.5, -1.0]}).trials(TrainingParams())
    with pytest.raises(ValueError, match="sweep trial 1: .*max_iter"):
        SweepConfig(space={"max_iter": [10]}).trials(TrainingParams())
    with pytest.raises(ValueError, match="alpha are empty"):
        SweepConfig(space={"alpha": []}).trials(TrainingParams())
    with pytest.raises(ValidationError):
        SweepConfig(space={})


def test_the_best_trial_is_the_best_on_the_primary_metric() -> None:
    records = [record(None, metrics(52.0, r2=0.40)), record(None, metrics(50.0, r2=0.35))]
    records.append(record(None, metrics(50.0, r2=0.45)))

    assert best_trial(records, "rmse") == 1  # lowest; the first of the tie
    assert best_trial(records, "r2") == 2  # highest
    with pytest.raises(ValueError, match="no trial completed"):
        best_trial([], "rmse")
