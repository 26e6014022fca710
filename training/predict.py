"""The predict function the online service and batch scoring share: one row, one answer.

A row's prediction must be the same bits whether the service scores it alone, among a
request's other rows, or a batch job scores it in a chunk of 100,000. For a linear model
(a 1-D ``coef_`` and a scalar ``intercept_``) it is the sum of ``x[j] * coef_[j]`` from the
first feature to the last, each product and each partial sum rounded to float64 (IEEE 754
fixes every step), plus ``intercept_``. ``X @ coef_`` (BLAS, and so scikit-learn's own
``predict``) is not: OpenBLAS sums a row's terms in an order that depends on how many rows
share the call (measured here: about one row in nine predicted alone differs in its last bits
from the same row predicted among 10,000). Other estimators go through ``predict``: trees and
their ensembles (random forest, histogram boosting) predict each row on its own (measured:
the same bits one row at a time and in blocks; ``tests/unit/training/test_predict.py``).

Pure NumPy, no scikit-learn import: it ships in the scoring image (``training/`` modules the
image copies: ``backends/local/docker_image.py``) and in the Azure ML batch job's code.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from training.schema import N_FEATURES

# The closed form must agree with ``estimator.predict`` to this (absolute and relative).
TOLERANCE = 1e-9
# One row is summed in Python floats; up to this many rows one running sum along each row (a
# single NumPy call) is quickest; beyond, adding the product columns one at a time is. All
# three sum in the same order, so they give the same bits.
ACCUMULATE_ROWS = 64

Predictor = Callable[[np.ndarray], np.ndarray]
logger = logging.getLogger(__name__)


def make_predictor(estimator: Any) -> tuple[Predictor, bool]:
    """Build the predict function: closed form for a linear model, ``predict`` otherwise.

    A linear model's ``predict`` spends ~160 µs per call checking its input; the closed form
    takes a few µs. Linear is read off the fitted estimator (a 1-D ``coef_`` and a scalar
    ``intercept_``), never off its class name, and the closed form is used only when it
    matches ``estimator.predict`` on a probe matrix within ``TOLERANCE``: any other estimator
    (trees, boosting, a pipeline) takes the general path.

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
        closed_form = linear_predictor(coef, float(intercept))
        probe = np.random.default_rng(0).normal(size=(16, N_FEATURES))
        if close(closed_form(probe), _quiet_predict(estimator, probe)):
            return closed_form, True
        logger.warning("closed-form prediction disagrees with predict; using predict")
    return (lambda rows: _quiet_predict(estimator, rows)), False


def linear_predictor(coef: Any, intercept: float) -> Predictor:
    """``sum(x[j] * coef[j] for j in order) + intercept`` for each row, row by row.

    Every row is summed left to right on its own, so its result does not depend on the
    other rows of the call, their number, or the memory layout.
    """
    weights = np.array(coef, dtype=np.float64)
    pairs = list(zip(range(1, len(weights)), weights.tolist()[1:], strict=True))
    first, offset = float(weights[0]), float(intercept)

    def predict(rows: np.ndarray) -> np.ndarray:
        if len(rows) == 1:  # a lone row, most requests: Python floats are quickest
            row = rows[0].tolist()
            total = row[0] * first
            for j, weight in pairs:
                total += row[j] * weight
            return np.array([total + offset])
        products = rows * weights  # each product rounded once
        if len(products) <= ACCUMULATE_ROWS:
            # A running sum along each row: element j is (element j-1) + product j.
            np.add.accumulate(products, axis=1, out=products)
            return products[:, -1] + offset
        total = products[:, 0].copy()
        for column in products.T[1:]:
            total += column
        total += offset
        return total

    return predict


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
