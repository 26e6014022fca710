"""Fitting, predicting, saving and loading the model (any configured estimator)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge

from training import model as model_io
from training.artifacts import MODEL_FILE
from training.params import TrainingParams
from training.schema import FEATURES, TARGET

FrameFactory = Callable[..., pd.DataFrame]  # the make_frame fixture (conftest.py)


def test_fit_uses_params(make_frame: FrameFactory) -> None:
    frame = make_frame(60)
    params = TrainingParams(hyperparameters={"alpha": 0.25, "fit_intercept": False})
    model = model_io.fit(frame, params)
    assert isinstance(model, Ridge)
    assert model.alpha == 0.25
    assert model.fit_intercept is False
    assert model.intercept_ == 0.0
    assert model.coef_.shape == (len(FEATURES),)


def test_fit_is_deterministic(make_frame: FrameFactory) -> None:
    frame = make_frame(60)
    first = model_io.fit(frame, TrainingParams())
    second = model_io.fit(frame, TrainingParams())
    np.testing.assert_array_equal(first.coef_, second.coef_)


def test_fit_rejects_empty_frame(make_frame: FrameFactory) -> None:
    with pytest.raises(ValueError, match="empty"):
        model_io.fit(make_frame(3).iloc[:0], TrainingParams())


def test_predict_accepts_frames_in_any_column_order_and_arrays(make_frame: FrameFactory) -> None:
    frame = make_frame(60)
    model = model_io.fit(frame, TrainingParams(hyperparameters={"alpha": 0.01}))
    from_frame = model_io.predict(model, frame)
    reordered = model_io.predict(model, frame[list(reversed(frame.columns))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an array must not trigger feature-name warnings
        from_array = model_io.predict(model, frame[list(FEATURES)].to_numpy())
    np.testing.assert_allclose(from_frame, reordered)
    np.testing.assert_allclose(from_frame, from_array)
    assert from_frame.dtype == np.float64
    # A nearly unregularised fit on a linear target is close to the truth.
    assert np.sqrt(np.mean((from_frame - frame[TARGET].to_numpy()) ** 2)) < 20


@pytest.mark.parametrize("shape", [(3, 9), (3, 11), (10,)])
def test_predict_rejects_wrong_shape(make_frame: FrameFactory, shape: tuple[int, ...]) -> None:
    model = model_io.fit(make_frame(20), TrainingParams())
    with pytest.raises(ValueError, match="expected shape"):
        model_io.predict(model, np.zeros(shape))


def test_predict_rejects_frame_without_feature(make_frame: FrameFactory) -> None:
    frame = make_frame(20)
    model = model_io.fit(frame, TrainingParams())
    with pytest.raises(ValueError, match="missing feature columns: s6"):
        model_io.predict(model, frame.drop(columns=["s6"]))


def test_save_and_load_round_trip(tmp_path: Path, make_frame: FrameFactory) -> None:
    frame = make_frame(30)
    model = model_io.fit(frame, TrainingParams())
    written = model_io.save(model, tmp_path)
    assert written == tmp_path / MODEL_FILE == tmp_path / "model.joblib"
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]  # no leftovers
    for source in (tmp_path, written):
        loaded = model_io.load(source)
        np.testing.assert_array_equal(
            model_io.predict(loaded, frame), model_io.predict(model, frame)
        )


def test_save_to_file_path_creates_parents(tmp_path: Path, make_frame: FrameFactory) -> None:
    model = model_io.fit(make_frame(10), TrainingParams())
    target = tmp_path / "nested" / "m.joblib"
    assert model_io.save(model, target) == target
    assert target.is_file()


def test_fit_uses_the_configured_estimator(make_frame: FrameFactory, tmp_path: Path) -> None:
    frame = make_frame(60)
    params = TrainingParams(estimator="random_forest", hyperparameters={"n_estimators": 5})
    model = model_io.fit(frame, params)
    assert type(model).__name__ == "RandomForestRegressor" and model.n_estimators == 5
    loaded = model_io.load(model_io.save(model, tmp_path))  # not only Ridge loads
    np.testing.assert_array_equal(model_io.predict(loaded, frame), model_io.predict(model, frame))


def test_load_refuses_other_objects(tmp_path: Path) -> None:
    joblib.dump({"not": "a model"}, tmp_path / "model.joblib")
    with pytest.raises(TypeError, match="expected a scikit-learn regressor.*got dict"):
        model_io.load(tmp_path)


def test_load_refuses_a_classifier(tmp_path: Path) -> None:
    classifier = RandomForestClassifier(n_estimators=2).fit(np.zeros((4, 10)), [0, 1, 0, 1])
    joblib.dump(classifier, tmp_path / "model.joblib")
    with pytest.raises(TypeError, match="got RandomForestClassifier"):
        model_io.load(tmp_path)


@pytest.mark.parametrize("fitted", [False, True])
def test_load_refuses_unfitted_or_wrong_width_regressors(tmp_path: Path, fitted: bool) -> None:
    regressor = Ridge().fit(np.ones((3, 4)), np.arange(3.0)) if fitted else Ridge()
    joblib.dump(regressor, tmp_path / "model.joblib")
    with pytest.raises(TypeError, match=f"takes {4 if fitted else None} features"):
        model_io.load(tmp_path)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        model_io.load(tmp_path)
