"""TrainingParams and GateConfig: defaults, validation, unknown keys, digest."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from training.params import GateConfig, TrainingParams


def test_training_params_defaults() -> None:
    params = TrainingParams()
    assert (params.estimator, params.holdout_fraction, params.seed) == ("ridge", 0.2, 42)
    # Resolved: every hyperparameter of the estimator, with its default.
    assert params.hyperparameters == {"alpha": 0.5, "fit_intercept": True}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alpah": 1.0}, "alpah"),  # a typo must not be silently ignored
        ({"hyperparameters": {"alpah": 1.0}}, "ridge has no hyperparameter 'alpah'"),
        ({"hyperparameters": {"alpha": 0.0}}, "ridge hyperparameter 'alpha'"),
        ({"hyperparameters": {"alpha": -1.0}}, "greater than 0"),
        ({"hyperparameters": {"alpha": float("nan")}}, "finite"),
        ({"hyperparameters": {"alpha": float("inf")}}, "finite"),
        ({"hyperparameters": {"alpha": "0.5"}}, "valid number"),  # strict: no strings
        ({"hyperparameters": {"fit_intercept": 1}}, "valid boolean"),
        ({"estimator": "xgboost"}, "estimator"),
        ({"estimator": "random_forest", "hyperparameters": {"alpha": 1.0}}, "random_forest"),
        ({"holdout_fraction": 0.0}, "holdout_fraction"),
        ({"holdout_fraction": 1.0}, "holdout_fraction"),
        ({"holdout_fraction": 1.5}, "holdout_fraction"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
    ],
)
def test_training_params_rejects(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingParams.model_validate(overrides)


def test_digest_is_stable_and_distinguishes_params() -> None:
    a = TrainingParams(hyperparameters={"alpha": 1.0}, seed=7)
    # Same values given differently (int for float, other key order) -> same digest.
    b = TrainingParams.model_validate({"seed": 7, "hyperparameters": {"alpha": 1}})
    assert a.digest() == b.digest()
    assert len(a.digest()) == 16
    int(a.digest(), 16)  # hex
    assert a.digest() != TrainingParams(hyperparameters={"alpha": 1.0}, seed=8).digest()
    assert a.digest() != TrainingParams(hyperparameters={"alpha": 1.5}, seed=7).digest()
    assert (
        a.digest()
        != TrainingParams(estimator="elasticnet", hyperparameters={"alpha": 1.0}, seed=7).digest()
    )


def test_digest_is_pinned() -> None:
    # The digest identifies params across machines and releases: changing how it is
    # computed silently breaks that, so pin the value of the defaults.
    assert TrainingParams().digest() == "b1e2d25483ea955c"


def test_gate_config_defaults() -> None:
    gate = GateConfig()
    assert gate.primary_metric == "rmse"
    assert gate.min_improvement == 0.0
    assert (gate.quality_floor_metric, gate.quality_floor) == ("r2", 0.2)
    assert gate.tie_policy == "keep_champion"
    assert gate.tie_tolerance == 1e-9


@pytest.mark.parametrize(
    "overrides",
    [
        {"min_improvment": 0.01},
        {"primary_metric": "mse"},
        {"quality_floor_metric": "accuracy"},
        {"tie_policy": "coin_flip"},
        {"min_improvement": -0.01},
        {"tie_tolerance": -1e-9},
        {"quality_floor": float("nan")},
    ],
)
def test_gate_config_rejects(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GateConfig.model_validate(overrides)
