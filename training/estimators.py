"""The estimators a training run can use: one class per estimator, chosen by name.

Each class declares the hyperparameters its estimator accepts (defaults, bounds; unknown
keys, NaN and infinity refused) and builds the unfitted scikit-learn regressor from them.
``TrainingParams`` names one with ``estimator`` and resolves ``hyperparameters`` through
it, so swapping the model is one configuration value. Adding an estimator is one class
here and one entry in ``ESTIMATORS`` (and in ``EstimatorName``).

scikit-learn is imported inside ``build`` only: ``training.params`` imports this module,
and code that merely validates parameters (the ``mlops`` command, flows) should not pay
for importing scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from sklearn.base import RegressorMixin

EstimatorName = Literal["ridge", "elasticnet", "hist_gradient_boosting", "random_forest"]


class EstimatorConfig(Protocol):
    """What ``build_estimator`` reads (``TrainingParams`` has it)."""

    @property
    def estimator(self) -> str: ...

    @property
    def hyperparameters(self) -> Mapping[str, Any]: ...

    @property
    def seed(self) -> int: ...


class Hyperparameters(BaseModel):
    """Base of the per-estimator hyperparameter models.

    Strict: ``"0.5"`` is not a float and ``1`` is not ``True``, so a value means the same
    in a JSON file, a flow parameter and the command line.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    def build(self, seed: int) -> RegressorMixin:
        """Return the unfitted regressor; ``seed`` is its ``random_state`` if it takes one."""
        raise NotImplementedError


class RidgeHyperparameters(Hyperparameters):
    """Linear least squares with an L2 penalty (the reference architecture's model)."""

    alpha: float = Field(default=0.5, gt=0, le=1e6)
    fit_intercept: bool = True

    def build(self, seed: int) -> RegressorMixin:
        from sklearn.linear_model import Ridge

        # random_state only matters for the stochastic solvers; set it so a solver change
        # can never make runs irreproducible.
        return Ridge(alpha=self.alpha, fit_intercept=self.fit_intercept, random_state=seed)


class ElasticNetHyperparameters(Hyperparameters):
    """Linear least squares with a mixed L1/L2 penalty.

    The default ``alpha`` is far below scikit-learn's 1.0: the diabetes features are scaled
    to unit norm, and at 1.0 the penalty zeroes nearly every coefficient.
    """

    alpha: float = Field(default=0.01, gt=0, le=1e6)
    l1_ratio: float = Field(default=0.5, ge=0, le=1)
    max_iter: int = Field(default=1000, ge=1, le=100_000)
    fit_intercept: bool = True

    def build(self, seed: int) -> RegressorMixin:
        from sklearn.linear_model import ElasticNet

        return ElasticNet(
            alpha=self.alpha,
            l1_ratio=self.l1_ratio,
            max_iter=self.max_iter,
            fit_intercept=self.fit_intercept,
            random_state=seed,
        )


class HistGradientBoostingHyperparameters(Hyperparameters):
    """Gradient-boosted trees on binned features."""

    max_iter: int = Field(default=100, ge=1, le=10_000)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    max_depth: int | None = Field(default=None, ge=1, le=100)
    min_samples_leaf: int = Field(default=20, ge=1, le=10_000)
    l2_regularization: float = Field(default=0.0, ge=0, le=1e6)

    def build(self, seed: int) -> RegressorMixin:
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            random_state=seed,
        )


class RandomForestHyperparameters(Hyperparameters):
    """Averaged, bootstrapped regression trees. ``n_estimators`` is capped because every tree
    is pickled into the model file the scoring image carries."""

    n_estimators: int = Field(default=100, ge=1, le=2000)
    max_depth: int | None = Field(default=None, ge=1, le=100)
    min_samples_leaf: int = Field(default=1, ge=1, le=10_000)

    def build(self, seed: int) -> RegressorMixin:
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            random_state=seed,
        )


ESTIMATORS: dict[str, type[Hyperparameters]] = {
    "ridge": RidgeHyperparameters,
    "elasticnet": ElasticNetHyperparameters,
    "hist_gradient_boosting": HistGradientBoostingHyperparameters,
    "random_forest": RandomForestHyperparameters,
}


class HyperparameterError(ValueError):
    """Hyperparameters an estimator does not accept; the message names estimator and key."""


def resolve_hyperparameters(estimator: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate hyperparameters for an estimator and fill in its defaults.

    Args:
        estimator: A key of ``ESTIMATORS``.
        values: The hyperparameters given (any subset of the estimator's).

    Returns:
        Every hyperparameter of the estimator, JSON-ready, so ``{}`` and the explicit
        defaults resolve to the same mapping.

    Raises:
        HyperparameterError: Unknown estimator, unknown key, or a value out of bounds;
            one line, each problem naming the estimator and the key.
    """
    model = ESTIMATORS.get(estimator)
    if model is None:
        raise HyperparameterError(
            f"unknown estimator {estimator!r}: choose one of {', '.join(ESTIMATORS)}"
        )
    try:
        return model.model_validate(dict(values)).model_dump(mode="json")
    except ValidationError as exc:
        allowed = ", ".join(model.model_fields)
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(hyperparameters)"
            if error["type"] == "extra_forbidden":
                problems.append(f"{estimator} has no hyperparameter {key!r} (it takes: {allowed})")
            else:
                problems.append(
                    f"{estimator} hyperparameter {key!r}: {error['msg']} (got {error['input']!r})"
                )
        raise HyperparameterError("; ".join(problems)) from None


def build_estimator(params: EstimatorConfig) -> RegressorMixin:
    """Return the unfitted regressor the parameters name.

    Args:
        params: The estimator's name, its hyperparameters and the seed (``TrainingParams``).

    Returns:
        A new, unfitted scikit-learn regressor, with ``random_state=params.seed`` where the
        estimator takes one.

    Raises:
        HyperparameterError: The name or a hyperparameter is invalid (never for validated
            ``TrainingParams``).
    """
    resolved = resolve_hyperparameters(params.estimator, params.hyperparameters)
    return ESTIMATORS[params.estimator].model_validate(resolved).build(params.seed)
