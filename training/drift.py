"""Drift of a window of collected rows against the training reference, and live error.

Pure functions (numpy, pandas, scipy): the monitoring flow's tasks read the window and the
reference from the lake and hand them here.

A feature (or the predictions) **drifts** when both tests agree:

- the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) rejects "same
  distribution" at ``p_value``: it accounts for sample size, but with thousands of rows it
  rejects for differences too small to matter;
- the population stability index (PSI, over ``BINS`` quantile bins of the reference) is at
  least ``psi``: a size of effect (0.1 "some", 0.2 "significant" by the usual reading), blind
  to sample size on its own.

A window smaller than ``min_rows`` gets no verdict: with a few dozen rows both tests are
noise, and a monitoring check must never claim drift from them.

Why not Evidently: it does the same tests (KS, PSI, Wasserstein) behind a report object, but
``evidently`` 0.7 adds 29 packages to our lock (checked with the installer's dry run against
constraints.txt): a second web framework (litestar), plotly, nltk, statsmodels, protobuf 7
and ``iterative-telemetry``, which reports usage over the network unless switched off. scipy
is already pinned (scikit-learn needs it); the statistics here are a few lines, and the
thresholds are ours to explain either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from training.collected import CollectedRow, collected_rows
from training.schema import FEATURES

BINS = 10
# PSI's log ratio is undefined for an empty bin: empty bins count as this share instead.
EPSILON = 1e-4
PREDICTION = "prediction"


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted (see the module docstring)."""

    p_value: float = 0.01
    psi: float = 0.2
    min_rows: int = 200


@dataclass(frozen=True)
class ColumnDrift:
    """One column of the window against its reference."""

    column: str
    reference_mean: float
    live_mean: float
    ks_statistic: float
    p_value: float
    psi: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """The drift verdict on one window; ``assessed`` is False for a window too small."""

    rows: int
    assessed: bool
    features: tuple[ColumnDrift, ...] = ()
    prediction: ColumnDrift | None = None  # None: no prediction reference yet

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.features if c.drifted]

    @property
    def prediction_drifted(self) -> bool:
        return self.prediction is not None and self.prediction.drifted

    @property
    def drifted(self) -> bool:
        return self.assessed and (bool(self.drifted_features) or self.prediction_drifted)


def parse_rows(lines: Iterable[str]) -> list[CollectedRow]:
    """The collected rows of window-file lines (``training.collected.collected_rows``)."""
    return collected_rows(lines)


def rows_frame(rows: Iterable[CollectedRow]) -> pd.DataFrame:
    """Collected rows as a frame: ids, time, model version, the features and the prediction."""
    records = [
        {
            "request_id": r.request_id,
            "row": r.row,
            "time": r.time,
            "model": r.model,
            "version": r.version,
            **r.features,
            PREDICTION: r.prediction,
        }
        for r in rows
    ]
    columns = ["request_id", "row", "time", "model", "version", *FEATURES, PREDICTION]
    return pd.DataFrame.from_records(records, columns=columns)


def psi(reference: np.ndarray, live: np.ndarray, bins: int = BINS) -> float:
    """Population stability index of ``live`` against ``reference``, over the reference's
    quantile bins (open-ended at both sides, so live values outside its range count)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])
    ref_share = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
    )
    live_share = np.bincount(np.searchsorted(edges, live, side="right"), minlength=len(edges) + 1)
    ref_p = np.maximum(ref_share / len(reference), EPSILON)
    live_p = np.maximum(live_share / len(live), EPSILON)
    return float(np.sum((live_p - ref_p) * np.log(live_p / ref_p)))


def column_drift(
    column: str, reference: np.ndarray, live: np.ndarray, thresholds: Thresholds
) -> ColumnDrift:
    """KS and PSI of one column; drifted when both are past their thresholds."""
    test = stats.ks_2samp(reference, live)
    p = float(test.pvalue)
    index = psi(reference, live)
    return ColumnDrift(
        column=column,
        reference_mean=float(np.mean(reference)),
        live_mean=float(np.mean(live)),
        ks_statistic=float(test.statistic),
        p_value=p,
        psi=index,
        drifted=p < thresholds.p_value and index >= thresholds.psi,
    )


def detect_drift(
    reference: pd.DataFrame,
    live: pd.DataFrame,
    thresholds: Thresholds,
    prediction_reference: np.ndarray | None = None,
) -> DriftReport:
    """Per-feature drift of ``live`` against ``reference`` (both with ``FEATURES`` columns),
    and prediction drift against ``prediction_reference`` when there is one.

    A window of fewer than ``thresholds.min_rows`` rows is not assessed (``assessed`` False,
    nothing drifted), nor is a prediction reference smaller than that.
    """
    rows = len(live)
    if rows < thresholds.min_rows:
        return DriftReport(rows=rows, assessed=False)
    features = tuple(
        column_drift(
            name,
            reference[name].to_numpy(dtype=float),
            live[name].to_numpy(dtype=float),
            thresholds,
        )
        for name in FEATURES
    )
    prediction = None
    if prediction_reference is not None and len(prediction_reference) >= thresholds.min_rows:
        prediction = column_drift(
            PREDICTION,
            np.asarray(prediction_reference, dtype=float),
            live[PREDICTION].to_numpy(dtype=float),
            thresholds,
        )
    return DriftReport(rows=rows, assessed=True, features=features, prediction=prediction)


@dataclass(frozen=True)
class LiveError:
    """Error of served predictions where labels arrived."""

    rows: int
    rmse: float
    mae: float


def live_error(predictions: np.ndarray, targets: np.ndarray) -> LiveError | None:
    """RMSE and MAE of ``predictions`` against ``targets``; None when there are none."""
    if len(predictions) == 0:
        return None
    errors = np.asarray(predictions, dtype=float) - np.asarray(targets, dtype=float)
    return LiveError(
        rows=len(errors),
        rmse=math.sqrt(float(np.mean(errors**2))),
        mae=float(np.mean(np.abs(errors))),
    )
