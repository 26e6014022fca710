"""The shared predict function: a row's prediction does not depend on the rows scored with it.

The online service answers requests of any size and batch scoring works in chunks; both call
``make_predictor``. For ``==`` between them, a row must give the same bits alone, among a few
rows, or among thousands: a linear model's closed form is its row's left-to-right sum (the
definition below, in plain Python floats), and the other estimators' ``predict`` treats each
row on its own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import ElasticNet, Ridge

from training.predict import ACCUMULATE_ROWS, linear_predictor, make_predictor
from training.schema import N_FEATURES

# Alone, a few, one either side of the closed form's switch of method, and many.
CHUNKS = (1, 3, 7, ACCUMULATE_ROWS, ACCUMULATE_ROWS + 1, 1_000)


def rows(n: int, seed: int = 0) -> np.ndarray:
    """Features over six orders of magnitude: the order of a sum then changes its last bits."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, N_FEATURES)) * 10.0 ** rng.uniform(-3, 3, size=(n, N_FEATURES))


def by_hand(coef: list[float], intercept: float, row: list[float]) -> float:
    """The definition: x[0]*w[0] + x[1]*w[1] + ... left to right, then the intercept."""
    total = row[0] * coef[0]
    for x, w in zip(row[1:], coef[1:], strict=True):
        total += x * w
    return total + intercept


def in_chunks(predict: object, data: np.ndarray, size: int) -> np.ndarray:
    assert callable(predict)
    return np.concatenate([predict(data[i : i + size]) for i in range(0, len(data), size)])


@pytest.mark.parametrize("n", [1, 5, ACCUMULATE_ROWS, ACCUMULATE_ROWS + 1, 2_000])
def test_the_closed_form_is_each_rows_left_to_right_sum(n: int) -> None:
    coef = np.random.default_rng(9).normal(scale=300.0, size=N_FEATURES)
    data = rows(n, seed=n)
    expected = [by_hand(coef.tolist(), 152.25, row) for row in data.tolist()]

    assert linear_predictor(coef, 152.25)(data).tolist() == expected


@pytest.mark.parametrize(
    "estimator",
    [
        Ridge(alpha=0.5),
        ElasticNet(alpha=0.01),
        HistGradientBoostingRegressor(max_iter=30, random_state=0),
        RandomForestRegressor(n_estimators=10, random_state=0),
    ],
    ids=["ridge", "elasticnet", "hist_gradient_boosting", "random_forest"],
)
def test_a_row_gets_the_same_bits_alone_and_among_any_rows(estimator: RegressorMixin) -> None:
    train = rows(300, seed=1)
    target = train @ np.linspace(-3.0, 3.0, N_FEATURES) + 150.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ElasticNet may not converge on this data: fine
        estimator.fit(train, target)
    predict, _ = make_predictor(estimator)
    data = rows(1_100, seed=2)
    whole = predict(data)

    for size in CHUNKS:
        some = data[: 300 * size]  # a few hundred calls each (boosting's predict is slow)
        chunked = in_chunks(predict, some, size)
        differ = int((chunked != whole[: len(some)]).sum())
        assert differ == 0, f"{differ} of {len(some)} rows differ in chunks of {size}"
    # Neither the memory layout nor a row's position in the array changes it either.
    assert np.array_equal(predict(np.asfortranarray(data)), whole)
    assert np.array_equal(predict(data[1:]), whole[1:])


def test_a_linear_model_takes_the_closed_form_and_agrees_with_its_predict() -> None:
    data = rows(500, seed=3)
    estimator = Ridge(alpha=0.5).fit(data, data.sum(axis=1))
    predict, fast = make_predictor(estimator)

    assert fast
    np.testing.assert_allclose(predict(data), estimator.predict(data), rtol=1e-12, atol=1e-9)
