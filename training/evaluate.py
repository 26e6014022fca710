"""Scoring a model and deciding whether a challenger replaces the champion."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

# The decision record lives in training.gate_models (no numpy, pandas or scikit-learn: the
# release flow and the records read it without paying their import); re-exported here.
from training.gate_models import Decision, Metrics, Thresholds, Verdict
from training.params import GateConfig
from training.schema import TARGET

if TYPE_CHECKING:
    from sklearn.base import RegressorMixin

# scikit-learn is imported where a model is scored, not here: the retraining flow imports this
# module (through training.decision) only to judge a job's record, and importing scikit-learn
# was over half of that flow's start-up.

# Metrics for which a smaller value is better; every other metric is higher-is-better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae"})

__all__ = [
    "Decision",
    "GateConfig",
    "Metrics",
    "Thresholds",
    "Verdict",
    "compute_metrics",
    "decide",
    "score",
]


def compute_metrics(y_true: np.ndarray | pd.Series, y_pred: np.ndarray | pd.Series) -> Metrics:
    """Compute RMSE, MAE and R² of predictions.

    Args:
        y_true: Observed target values.
        y_pred: Predicted values, same length.

    Returns:
        The metrics and the number of rows.

    Raises:
        ValueError: Lengths differ or there are fewer than 2 rows (R² is undefined).
    """
    true = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has shape {true.shape} but y_pred has {pred.shape}")
    if true.size < 2:
        raise ValueError(f"need at least 2 rows to compute metrics, got {true.size}")
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return Metrics(
        rmse=float(np.sqrt(mean_squared_error(true, pred))),
        mae=float(mean_absolute_error(true, pred)),
        r2=float(r2_score(true, pred)),
        n=int(true.size),
    )


def score(model: RegressorMixin, holdout: pd.DataFrame) -> Metrics:
    """Score a model on holdout rows.

    Args:
        model: The fitted model.
        holdout: A frame with the feature columns and the target.

    Returns:
        The holdout metrics.
    """
    from training.model import predict

    return compute_metrics(holdout[TARGET].to_numpy(dtype=float), predict(model, holdout))


def _passes_floor(value: float, metric: str, floor: float) -> bool:
    return value <= floor if metric in LOWER_IS_BETTER else value >= floor


def _relative_improvement(challenger: float, champion: float, metric: str) -> float:
    gain = champion - challenger if metric in LOWER_IS_BETTER else challenger - champion
    # A champion score of exactly 0 has no relative scale: fall back to the absolute gain.
    return gain / abs(champion) if champion != 0 else gain


def decide(
    challenger: Metrics,
    champion: Metrics | None,
    gate: GateConfig,
    champion_version: str | None = None,
) -> Decision:
    """Decide whether the challenger should be registered as the new champion.

    Rules, first match wins: the challenger is below the quality floor -> reject (also on
    a first run); there is no champion -> register; the primary scores are within
    ``tie_tolerance`` -> per ``tie_policy``; the relative improvement is positive and at
    least ``min_improvement`` -> register; otherwise reject.

    Args:
        challenger: Holdout metrics of the new model.
        champion: Metrics of the current champion, or ``None`` if there is none.
        gate: The gate configuration.
        champion_version: The champion's registry version, recorded in the decision.

    Returns:
        The decision, with a reason that names the numbers it was based on.
    """
    metric = gate.primary_metric
    thresholds = Thresholds(
        min_improvement=gate.min_improvement,
        quality_floor_metric=gate.quality_floor_metric,
        quality_floor=gate.quality_floor,
        tie_policy=gate.tie_policy,
        tie_tolerance=gate.tie_tolerance,
    )

    def _decision(verdict: Verdict, reason: str, improvement: float | None) -> Decision:
        return Decision(
            verdict=verdict,
            reason=reason,
            primary_metric=metric,
            challenger=challenger,
            champion=champion,
            champion_version=champion_version,
            improvement=improvement,
            thresholds=thresholds,
        )

    floor_metric = gate.quality_floor_metric
    floor_value = getattr(challenger, floor_metric)
    if not _passes_floor(floor_value, floor_metric, gate.quality_floor):
        bound = "at most" if floor_metric in LOWER_IS_BETTER else "at least"
        reason = (
            f"challenger {floor_metric}={floor_value:.6g} misses the quality floor "
            f"({bound} {gate.quality_floor:.6g})"
        )
        return _decision("reject", reason, None)

    chall = getattr(challenger, metric)
    if champion is None:
        reason = f"first model: no champion to compare with; challenger {metric}={chall:.6g}"
        return _decision("register", reason, None)

    champ = getattr(champion, metric)
    improvement = _relative_improvement(chall, champ, metric)
    versus = f"challenger {metric}={chall:.6g} vs champion {metric}={champ:.6g}"
    if champion_version is not None:
        versus += f" (version {champion_version})"
    if math.isclose(chall, champ, rel_tol=0.0, abs_tol=gate.tie_tolerance):
        if gate.tie_policy == "prefer_challenger":
            verdict: Verdict = "register"
            outcome = "prefer the challenger"
        else:
            verdict, outcome = "reject", "keep the champion"
        reason = f"tie: {versus} within {gate.tie_tolerance:g}; policy is to {outcome}"
        return _decision(verdict, reason, improvement)

    if improvement > 0 and improvement >= gate.min_improvement:
        reason = (
            f"challenger is better: {versus}, improvement {improvement:.2%} "
            f">= required {gate.min_improvement:.2%}"
        )
        return _decision("register", reason, improvement)
    if improvement <= 0:
        reason = f"challenger is not better: {versus}, improvement {improvement:.2%}"
    else:
        reason = (
            f"improvement too small: {versus}, improvement {improvement:.2%} "
            f"< required {gate.min_improvement:.2%}"
        )
    return _decision("reject", reason, improvement)
