"""The estimator factory: every estimator builds, fits and predicts; hyperparameters are
validated per estimator with defaults filled in; the command-line form parses."""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.base import is_regressor

from training import model as model_io
from training.data import reference_dataset, split, to_training_frame
from training.estimators import (
    ESTIMATORS,
    EstimatorName,
    HyperparameterError,
    build_estimator,
    resolve_hyperparameters,
)
from training.evaluate import score
from training.params import (
    TrainingParams,
    describe,
    params_from_options,
    parse_assignment,
)

NAMES: tuple[str, ...] = get_args(EstimatorName)
CLASSES = {
    "ridge": "Ridge",
    "elasticnet": "ElasticNet",
    "hist_gradient_boosting": "HistGradientBoostingRegressor",
    "random_forest": "RandomForestRegressor",
}


def test_every_name_has_one_definition() -> None:
    assert set(NAMES) == set(ESTIMATORS) == set(CLASSES)
    assert {"ridge", "elasticnet", "hist_gradient_boosting", "random_forest"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_build_returns_the_unfitted_regressor_with_seed_and_defaults(name: str) -> None:
    params = TrainingParams(estimator=name, seed=123)  # type: ignore[arg-type]
    estimator = build_estimator(params)
    assert type(estimator).__name__ == CLASSES[name]
    assert is_regressor(estimator)
    assert not hasattr(estimator, "n_features_in_")  # unfitted
    assert estimator.get_params()["random_state"] == 123
    for key, value in params.hyperparameters.items():
        assert estimator.get_params()[key] == value, key


@pytest.mark.parametrize("name", NAMES)
def test_each_estimator_fits_and_predicts_the_diabetes_data(name: str) -> None:
    params = TrainingParams(estimator=name)  # type: ignore[arg-type]
    train, holdout = split(to_training_frame(reference_dataset()), 0.2, params.seed)
    fitted = model_io.fit(train, params)
    predictions = model_io.predict(fitted, holdout)
    assert predictions.shape == (len(holdout),) and np.isfinite(predictions).all()
    # Every default passes the default gate's quality floor (r2 >= 0.2) on this data.
    assert score(fitted, holdout).r2 > 0.2
    # Same parameters, same model: the seed reaches the stochastic estimators.
    again = model_io.predict(model_io.fit(train, params), holdout)
    np.testing.assert_array_equal(predictions, again)


def test_hyperparameters_reach_the_estimator() -> None:
    params = TrainingParams(
        estimator="hist_gradient_boosting",
        hyperparameters={"max_iter": 7, "learning_rate": 0.3, "max_depth": 2},
    )
    estimator = build_estimator(params)
    assert (estimator.max_iter, estimator.learning_rate, estimator.max_depth) == (7, 0.3, 2)
    assert params.hyperparameters == {
        "max_iter": 7,
        "learning_rate": 0.3,
        "max_depth": 2,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
    }


@pytest.mark.parametrize("name", NAMES)
def test_digest_is_the_same_for_empty_and_explicit_defaults(name: str) -> None:
    implicit = TrainingParams(estimator=name)  # type: ignore[arg-type]
    defaults = ESTIMATORS[name]().model_dump(mode="json")
    explicit = TrainingParams.model_validate({"estimator": name, "hyperparameters": defaults})
    assert implicit == explicit and implicit.digest() == explicit.digest()
    # A round trip through JSON (flow parameters, the compute job's --params) is stable.
    reread = TrainingParams.model_validate_json(implicit.model_dump_json())
    assert reread.digest() == implicit.digest()


def test_estimators_with_equal_hyperparameters_have_other_digests() -> None:
    digests = {TrainingParams(estimator=name).digest() for name in NAMES}  # type: ignore[arg-type]
    assert len(digests) == len(NAMES)


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("ridge", {"n_estimators": 10}, "ridge has no hyperparameter 'n_estimators'"),
        ("random_forest", {"alpha": 1.0}, "random_forest has no hyperparameter 'alpha'"),
        ("elasticnet", {"l1_ratio": 1.5}, "elasticnet hyperparameter 'l1_ratio'"),
        ("elasticnet", {"max_iter": 0}, "elasticnet hyperparameter 'max_iter'"),
        ("hist_gradient_boosting", {"learning_rate": 0}, "'learning_rate'"),
        ("hist_gradient_boosting", {"max_depth": 0}, "'max_depth'"),
        ("hist_gradient_boosting", {"l2_regularization": -1.0}, "'l2_regularization'"),
        ("random_forest", {"n_estimators": 0}, "'n_estimators'"),
        ("random_forest", {"n_estimators": 2.5}, "'n_estimators'"),
        ("random_forest", {"min_samples_leaf": float("nan")}, "'min_samples_leaf'"),
        ("gbm", {}, "unknown estimator 'gbm'"),
    ],
)
def test_bad_hyperparameters_name_estimator_and_key(
    name: str, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(HyperparameterError, match=message):
        resolve_hyperparameters(name, values)


def test_the_error_lists_what_the_estimator_takes() -> None:
    with pytest.raises(ValidationError) as caught:
        TrainingParams(estimator="random_forest", hyperparameters={"alpha": 1.0, "depth": 3})
    line = describe(caught.value)
    assert "\n" not in line
    assert "random_forest has no hyperparameter 'alpha'" in line
    assert "random_forest has no hyperparameter 'depth'" in line
    assert "n_estimators, max_depth, min_samples_leaf" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpha=0.5", ("alpha", 0.5)),
        ("max_iter=200", ("max_iter", 200)),
        ("fit_intercept=false", ("fit_intercept", False)),
        ("max_depth=null", ("max_depth", None)),
        ("name=auto", ("name", "auto")),  # not JSON: a string
        ('name="auto"', ("name", "auto")),
        ("x=[1, 2]", ("x", "[1, 2]")),  # not a scalar: kept as written
        ("expr=a=b", ("expr", "a=b")),  # split on the first "="
        (" alpha =1", ("alpha", 1)),
    ],
)
def test_parse_assignment(text: str, expected: tuple[str, Any]) -> None:
    assert parse_assignment(text) == expected


def test_params_from_options() -> None:
    params = params_from_options("random_forest", ["n_estimators=20", "max_depth=null"])
    assert params.estimator == "random_forest"
    assert params.hyperparameters == {"n_estimators": 20, "max_depth": None, "min_samples_leaf": 1}
    assert params_from_options(None, []) == TrainingParams()
    assert params_from_options(None, ["alpha=2"]).hyperparameters["alpha"] == 2.0


@pytest.mark.parametrize(
    ("estimator", "assignments", "message"),
    [
        ("xgboost", [], "unknown estimator 'xgboost': choose one of ridge, elasticnet"),
        ("ridge", ["alpha"], "expected KEY=VALUE, got 'alpha'"),
        ("ridge", ["=1"], "expected KEY=VALUE"),
        ("ridge", ["alpha=1", "alpha=2"], "'alpha' is given twice"),
        ("ridge", ["depth=3"], "ridge has no hyperparameter 'depth'"),
        ("ridge", ["alpha=abc"], "ridge hyperparameter 'alpha': .* \\(got 'abc'\\)"),
        (None, ["n_estimators=5"], "ridge has no hyperparameter 'n_estimators'"),
    ],
)
def test_params_from_options_errors_are_one_line(
    estimator: str | None, assignments: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        params_from_options(estimator, assignments)
    assert "\n" not in str(caught.value)
