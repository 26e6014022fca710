"""The predict function: ``X @ coef_ + intercept_`` for a linear model, ``predict`` otherwise."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from training.schema import N_FEATURES

# The closed form must agree with ``estimator.predict`` to this (absolute and relative).
TOLERANCE = 1e-9

Predictor = Callable[[np.ndarray], np.ndarray]
logger = logging.getLogger("scoring.model")


def make_predictor(estimator: Any) -> tuple[Predictor, bool]:
    """Build the predict function: closed form for a linear model, ``predict`` otherwise.

    A linear model's ``predict`` spends ~160 µs per call checking its input;
    ``X @ coef_ + intercept_`` takes ~3 µs. Linear is read off the fitted estimator (a 1-D
    ``coef_`` and a scalar ``intercept_``), never off its class name, and the closed form is
    used only when it matches ``estimator.predict`` on a probe matrix within ``TOLERANCE``:
    any other estimator (trees, boosting, a pipeline) takes the general path.

    Args:
        estimator: A fitted scikit-learn regressor.

    Returns:
        The predictor and whether it is the closed form.
    """
    coef: Any = getattr(estimator, "coef_", None)
    intercept: Any = getattr(estimator, "intercept_", None)
    if (
        coef is not None
        and np.ndim(coef) == 1
        and intercept is not None
        and np.ndim(intercept) == 0
    ):
        weights = np.ascontiguousarray(coef, dtype=np.float64)
        offset = float(intercept)

        def closed_form(rows: np.ndarray) -> np.ndarray:
            return rows @ weights + offset

        probe = np.random.default_rng(0).normal(size=(16, N_FEATURES))
        if close(closed_form(probe), _quiet_predict(estimator, probe)):
            return closed_form, True
        logger.warning("closed-form prediction disagrees with predict; using predict")
    return (lambda rows: np.asarray(_quiet_predict(estimator, rows), dtype=np.float64)), False


def _quiet_predict(estimator: Any, rows: np.ndarray) -> np.ndarray:
    # A model fitted on a DataFrame warns about feature names on every ndarray call.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
        return np.asarray(estimator.predict(rows), dtype=np.float64)


def close(left: np.ndarray, right: np.ndarray) -> bool:
    """Whether two prediction arrays agree within ``TOLERANCE``."""
    return left.shape == right.shape and bool(
        np.allclose(left, right, rtol=TOLERANCE, atol=TOLERANCE)
    )
