"""Drift and live error on synthetic windows: drifted detected, clean not, small not judged."""

from __future__ import annotations

import numpy as np
import pytest

from tests.utils.collected import predictions_of, traffic
from training import drift
from training.data import reference_dataset
from training.schema import FEATURES

THRESHOLDS = drift.Thresholds(p_value=0.01, psi=0.2, min_rows=200)


@pytest.fixture(scope="module")
def reference():
    return reference_dataset()[list(FEATURES)]


def window(rows: int, shift: float, seed: int = 1):
    frame = traffic(rows, seed=seed, shift=shift)
    frame[drift.PREDICTION] = predictions_of(frame)
    return frame


def test_a_shifted_window_drifts_in_the_shifted_features(reference) -> None:
    report = drift.detect_drift(reference, window(500, shift=1.0), THRESHOLDS)
    assert report.assessed and report.drifted
    assert set(report.drifted_features) == {"bmi", "s5"}
    bmi = next(c for c in report.features if c.column == "bmi")
    assert bmi.live_mean > bmi.reference_mean and bmi.p_value < 1e-6 and bmi.psi > 0.2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_window_does_not_drift(reference, seed: int) -> None:
    report = drift.detect_drift(reference, window(500, shift=0.0, seed=seed), THRESHOLDS)
    assert report.assessed
    assert report.drifted_features == [] and not report.drifted


def test_a_small_window_is_not_judged_even_when_shifted(reference) -> None:
    report = drift.detect_drift(reference, window(150, shift=3.0), THRESHOLDS)
    assert not report.assessed and not report.drifted and report.features == ()


def test_prediction_drift_needs_a_large_enough_reference(reference) -> None:
    live = window(500, shift=1.0)
    clean = predictions_of(traffic(500, seed=9))
    assert drift.detect_drift(reference, live, THRESHOLDS, clean[:100]).prediction is None
    report = drift.detect_drift(reference, live, THRESHOLDS, clean)
    assert report.prediction is not None and report.prediction_drifted


def test_psi_is_zero_for_the_same_sample_and_grows_with_the_shift() -> None:
    values = np.random.default_rng(0).normal(size=5000)
    assert drift.psi(values, values) == pytest.approx(0.0, abs=1e-9)
    assert (
        drift.psi(values, values + 0.1)
        < drift.psi(values, values + 0.5)
        < drift.psi(values, values + 1.0)
    )


def test_live_error() -> None:
    error = drift.live_error(np.array([1.0, 3.0]), np.array([2.0, 1.0]))
    assert error is not None
    assert error.rows == 2 and error.mae == 1.5 and error.rmse == pytest.approx(np.sqrt(2.5))
    assert drift.live_error(np.array([]), np.array([])) is None


def test_a_tiny_shift_in_a_huge_window_is_significant_but_not_drift() -> None:
    """KS alone would call it (p far below 0.01); the PSI says the effect is negligible."""
    rng = np.random.default_rng(0)
    reference, live = rng.normal(size=50_000), rng.normal(0.05, 1.0, size=50_000)
    column = drift.column_drift("x", reference, live, THRESHOLDS)
    assert column.p_value < 1e-6 and column.psi < 0.01
    assert not column.drifted
