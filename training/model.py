"""Fit, apply, save and load the model: the estimator ``TrainingParams`` names.

The model is fitted on a plain NumPy array in ``FEATURES`` order, so it has no
``feature_names_in_``: the scoring service can pass arrays without warnings, and
``predict`` reorders DataFrame columns itself.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, is_regressor

from training.artifacts import MODEL_FILE
from training.estimators import build_estimator
from training.params import TrainingParams
from training.schema import DTYPE, FEATURES, N_FEATURES, TARGET

logger = logging.getLogger(__name__)


def _features(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Return X as a float64 (n, N_FEATURES) array in ``FEATURES`` order."""
    if isinstance(X, pd.DataFrame):
        missing = [name for name in FEATURES if name not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        array = X[list(FEATURES)].to_numpy(dtype=DTYPE)
    else:
        array = np.asarray(X, dtype=DTYPE)
    if array.ndim != 2 or array.shape[1] != N_FEATURES:
        raise ValueError(f"expected shape (n, {N_FEATURES}), got {array.shape}")
    return array


def fit(train: pd.DataFrame, params: TrainingParams) -> RegressorMixin:
    """Fit the estimator the parameters name on the training rows.

    Args:
        train: A frame with the ``FEATURES`` and ``TARGET`` columns.
        params: Supplies the estimator, its hyperparameters and the seed.

    Returns:
        The fitted model.

    Raises:
        ValueError: ``train`` is empty or lacks a feature column.
    """
    if train.empty:
        raise ValueError("cannot fit on an empty training set")
    model = build_estimator(params)
    model.fit(_features(train), train[TARGET].to_numpy(dtype=DTYPE))
    logger.info("fitted %s %s on %d rows", params.estimator, params.hyperparameters, len(train))
    return model


def predict(model: RegressorMixin, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Predict the target for each row of X.

    Args:
        model: A model returned by ``fit`` or ``load``.
        X: A frame with the ``FEATURES`` columns (any order), or an (n, 10) array whose
            columns are in ``FEATURES`` order.

    Returns:
        A float64 array of n predictions.

    Raises:
        ValueError: X has the wrong shape or lacks a feature column.
    """
    return np.asarray(model.predict(_features(X)), dtype=DTYPE)


def _model_file(path: Path) -> Path:
    return path / MODEL_FILE if path.is_dir() else path


def save(model: RegressorMixin, path: Path) -> Path:
    """Write the model with joblib.

    Args:
        model: The model to save.
        path: A directory (the file is ``model.joblib`` inside it) or a file path.

    Returns:
        The path of the written file.
    """
    target = _model_file(Path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees a half-written model file.
    partial = target.with_name(target.name + ".partial")
    joblib.dump(model, partial)
    os.replace(partial, target)
    return target


def load(path: Path) -> RegressorMixin:
    """Read a model written by ``save``.

    Args:
        path: The directory holding ``model.joblib``, or the file itself.

    Returns:
        The model: any fitted scikit-learn regressor taking ``N_FEATURES`` inputs.

    Raises:
        FileNotFoundError: There is no model file at ``path``.
        TypeError: The file holds something other than a fitted regressor of the schema's
            features.
    """
    model = joblib.load(_model_file(Path(path)))
    # is_regressor raises, rather than answers, for objects that are not estimators.
    if not (isinstance(model, BaseEstimator) and is_regressor(model)):
        raise TypeError(f"expected a scikit-learn regressor in {path}, got {type(model).__name__}")
    # n_features_in_ exists only once fitted, so this also refuses an unfitted estimator.
    n_in = getattr(model, "n_features_in_", None)
    if n_in != N_FEATURES:
        raise TypeError(
            f"the {type(model).__name__} in {path} takes {n_in} features, "
            f"the schema has {N_FEATURES}"
        )
    return model
