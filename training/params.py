"""Typed parameters: how to train (``TrainingParams``) and when to promote (``GateConfig``).

Both models forbid unknown keys, so a typo such as ``alpah`` is an error instead of a
silently ignored setting, and both refuse NaN and infinity. The estimator and its
hyperparameters are checked by ``training.estimators``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from training.estimators import (
    ESTIMATORS,
    EstimatorName,
    HyperparameterError,
    resolve_hyperparameters,
)

MetricName = Literal["rmse", "mae", "r2"]
TiePolicy = Literal["keep_champion", "prefer_challenger"]

# Length of the hex digest returned by ``TrainingParams.digest``: 64 bits is plenty to tell
# parameter sets apart and stays readable in tags and logs.
_DIGEST_LENGTH = 16


class TrainingParams(BaseModel):
    """The estimator, its hyper-parameters and the split settings of one training run.

    Attributes:
        estimator: Which model to train (see ``training.estimators.ESTIMATORS``).
        hyperparameters: The estimator's hyper-parameters. Any subset may be given; after
            validation it holds every one of them, defaults filled in, so ``{}`` and the
            explicit defaults are equal parameters with equal digests.
        holdout_fraction: Share of rows held out for scoring, strictly between 0 and 1.
        seed: Salt of the row hash that assigns rows to the holdout, and the model's
            random_state; in [0, 2**32 - 1].
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # Declared before ``hyperparameters``: its validator reads the validated name.
    estimator: EstimatorName = "ridge"
    hyperparameters: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    # Bounded because scikit-learn only accepts random_state in [0, 2**32 - 1].
    seed: int = Field(default=42, ge=0, le=2**32 - 1)

    @field_validator("hyperparameters")
    @classmethod
    def _resolve(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        estimator = info.data.get("estimator")
        if estimator is None:  # the name itself was invalid: that error is reported
            return value
        try:
            return resolve_hyperparameters(estimator, value)
        except HyperparameterError as exc:
            # A custom error keeps the message as written (no "Value error, " prefix).
            # The message goes in as context, so braces in it are never read as a template.
            raise PydanticCustomError(
                "hyperparameters", "{problem}", {"problem": str(exc)}
            ) from None

    def digest(self) -> str:
        """Return a short, stable identifier of these parameters.

        Returns:
            The first 16 hex characters of the sha256 of the canonical JSON (sorted keys,
            no whitespace), so equal parameters give equal digests on every machine.
        """
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_DIGEST_LENGTH]


class GateConfig(BaseModel):
    """The rules that decide whether a challenger model replaces the champion.

    Attributes:
        primary_metric: Metric compared between challenger and champion.
        min_improvement: Relative improvement the challenger must show on the primary
            metric (0.01 means 1 %); 0 means any strict improvement.
        quality_floor_metric: Metric checked against ``quality_floor``.
        quality_floor: Absolute bar for the challenger: for ``r2`` it must be at least
            this, for ``rmse``/``mae`` at most this.
        tie_policy: What happens when both scores are within ``tie_tolerance``.
        tie_tolerance: Absolute difference under which two scores count as a tie.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    primary_metric: MetricName = "rmse"
    min_improvement: float = Field(default=0.0, ge=0)
    quality_floor_metric: MetricName = "r2"
    quality_floor: float = 0.2
    tie_policy: TiePolicy = "keep_champion"
    tie_tolerance: float = Field(default=1e-9, ge=0)


def describe(error: ValidationError) -> str:
    """Say in one line what is wrong with parameters, for command-line messages.

    Args:
        error: What validating ``TrainingParams`` (or ``GateConfig``) raised.

    Returns:
        The problems joined by ``"; "``, each naming its field (hyperparameter problems
        name the estimator and the key themselves).
    """
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        if item["type"] == "hyperparameters":
            problems.append(item["msg"])
        elif field == "estimator" and item["type"] == "literal_error":
            problems.append(
                f"unknown estimator {item['input']!r}: choose one of {', '.join(ESTIMATORS)}"
            )
        else:
            problems.append(f"{field or 'params'}: {item['msg']}")
    return "; ".join(problems)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split a ``KEY=VALUE`` option; the value is read as a JSON scalar where it is one.

    ``alpha=0.5`` gives ``0.5``, ``fit_intercept=false`` ``False``, ``max_depth=null``
    ``None``; anything else (``solver=auto``, a JSON list or object) stays a string.

    Args:
        text: The option's value.

    Returns:
        The key and the parsed value.

    Raises:
        ValueError: There is no ``=`` or the key is empty.
    """
    key, separator, raw = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    return key, value if isinstance(value, str | int | float | bool | None) else raw


def params_from_options(estimator: str | None, assignments: Sequence[str]) -> TrainingParams:
    """Build ``TrainingParams`` from ``--estimator NAME`` and ``--param KEY=VALUE`` options.

    Args:
        estimator: The estimator's name; ``None`` for the default one.
        assignments: Hyperparameters as ``KEY=VALUE`` (see ``parse_assignment``).

    Returns:
        The validated parameters (other fields at their defaults).

    Raises:
        ValueError: A malformed or repeated assignment, an unknown estimator, or a
            hyperparameter the estimator does not take or accept; the message is one line.
    """
    hyperparameters: dict[str, Any] = {}
    for text in assignments:
        key, value = parse_assignment(text)
        if key in hyperparameters:
            raise ValueError(f"hyperparameter {key!r} is given twice")
        hyperparameters[key] = value
    raw: dict[str, Any] = {"hyperparameters": hyperparameters}
    if estimator is not None:
        raw["estimator"] = estimator
    try:
        return TrainingParams.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
