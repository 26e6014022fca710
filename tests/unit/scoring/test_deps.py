"""Model loading: integrity and version checks, and the closed-form fast path."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.tree import DecisionTreeRegressor
from starlette.testclient import TestClient

from scoring.app import create_app
from scoring.deps import ModelLoadError, load_model
from scoring.settings import ScoringSettings
from training.artifacts import sha256_file
from training.predict import make_predictor

Settings = Callable[..., ScoringSettings]


def test_loads_the_shared_model(settings: ScoringSettings, model_sha: str) -> None:
    model = load_model(settings)
    assert (model.name, model.version, model.sha256) == ("diabetes-ridge", "7", model_sha)
    assert model.fast_path is True
    assert (model.estimator, model.estimator_name) == ("Ridge", "ridge")
    assert model.params["hyperparameters"]["alpha"] == 0.5


def test_fast_path_equals_predict(model_dir: Path) -> None:
    estimator = joblib.load(model_dir / "model.joblib")
    predict, fast = make_predictor(estimator)
    assert fast
    rows = np.random.default_rng(1).normal(scale=0.1, size=(500, 10))
    expected = estimator.predict(rows)
    np.testing.assert_allclose(predict(rows), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(predict(rows[:1]), expected[:1], rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("estimator", "fast"),
    [
        (Lasso(alpha=0.01), True),
        (ElasticNet(alpha=0.01), True),
        (DecisionTreeRegressor(max_depth=3), False),
        (HistGradientBoostingRegressor(max_iter=20), False),
        (RandomForestRegressor(n_estimators=5, random_state=0), False),
    ],
)
def test_linear_models_take_the_fast_path_and_others_predict(
    tmp_path: Path,
    model_folder_factory: Callable[..., Path],
    make_settings: Settings,
    estimator: RegressorMixin,
    fast: bool,
) -> None:
    """Linear is read off the fitted model (coef_, intercept_), not off the class Ridge; any
    other regressor is served by its own predict. Either way the golden rows reproduce."""
    folder = model_folder_factory(tmp_path / "m", estimator=estimator)
    model = load_model(
        make_settings(model_dir=folder, model_sha256=sha256_file(folder / "model.joblib"))
    )
    assert model.fast_path is fast
    golden = json.loads((folder / "golden.json").read_text())
    np.testing.assert_allclose(model.predict(np.asarray(golden["data"])), golden["predictions"])


def test_sha_mismatch_refuses(make_settings: Settings) -> None:
    with pytest.raises(ModelLoadError, match="sha256 mismatch.*registry expects f{64}"):
        load_model(make_settings(model_sha256="f" * 64))


def test_sklearn_version_mismatch_refuses(
    tmp_path: Path, model_folder_factory: Callable[..., Path], make_settings: Settings
) -> None:
    folder = model_folder_factory(
        tmp_path / "m", versions={"scikit-learn": "0.24.2", "numpy": "1.19.0"}
    )
    settings = make_settings(model_dir=folder, model_sha256=sha256_file(folder / "model.joblib"))
    with pytest.raises(ModelLoadError, match=r"trained with 0\.24\.2, this service runs 1\."):
        load_model(settings)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_model", "does not exist"),
        ("no_run", "run.json does not exist"),
        ("no_versions", "records no library versions"),
        ("no_sklearn", "does not record the scikit-learn version"),
        ("features", "lists features"),
        ("no_features", "does not list the feature names"),
        ("golden", "does not reproduce"),
        ("golden_width", "golden.json is malformed: rows have widths"),
        ("golden_json", "golden.json is malformed: cannot read it as JSON"),
        ("corrupt", "cannot unpickle"),
    ],
)
def test_broken_folders_refuse(
    tmp_path: Path,
    model_folder_factory: Callable[..., Path],
    make_settings: Settings,
    breakage: str,
    message: str,
) -> None:
    folder = model_folder_factory(tmp_path / "m")
    run = json.loads((folder / "run.json").read_text())
    if breakage == "no_model":
        (folder / "model.joblib").unlink()
    elif breakage == "no_run":
        (folder / "run.json").unlink()
    elif breakage == "no_versions":
        del run["versions"]
    elif breakage == "no_sklearn":
        del run["versions"]["scikit-learn"]
    elif breakage == "features":
        run["features"] = list(reversed(run["features"]))
    elif breakage == "no_features":
        del run["features"]
    elif breakage == "golden":
        golden = json.loads((folder / "golden.json").read_text())
        golden["predictions"][0] += 1.0
        (folder / "golden.json").write_text(json.dumps(golden))
    elif breakage == "golden_width":
        golden = json.loads((folder / "golden.json").read_text())
        golden["data"] = [row[:-1] for row in golden["data"]]
        (folder / "golden.json").write_text(json.dumps(golden))
    elif breakage == "golden_json":
        (folder / "golden.json").write_text("{")
    elif breakage == "corrupt":
        (folder / "model.joblib").write_bytes(b"not a pickle")
    if breakage in ("no_versions", "no_sklearn", "features", "no_features"):
        (folder / "run.json").write_text(json.dumps(run))
    sha = sha256_file(folder / "model.joblib") if (folder / "model.joblib").exists() else "0" * 64
    with pytest.raises(ModelLoadError, match=message):
        load_model(make_settings(model_dir=folder, model_sha256=sha))


def test_missing_golden_only_warns(
    tmp_path: Path,
    model_folder_factory: Callable[..., Path],
    make_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = model_folder_factory(tmp_path / "m")
    (folder / "golden.json").unlink()
    (folder / "metrics.json").unlink()
    model = load_model(
        make_settings(model_dir=folder, model_sha256=sha256_file(folder / "model.joblib"))
    )
    assert model.metrics == {}
    assert "skipping the golden self-check" in caplog.text


def test_wrong_feature_count_refuses(
    tmp_path: Path, model_folder_factory: Callable[..., Path], make_settings: Settings
) -> None:
    folder = model_folder_factory(tmp_path / "m")
    small = Ridge().fit(np.ones((3, 4)), np.arange(3.0))
    joblib.dump(small, folder / "model.joblib")
    settings = make_settings(model_dir=folder, model_sha256=sha256_file(folder / "model.joblib"))
    with pytest.raises(ModelLoadError, match="takes 4 features"):
        load_model(settings)


def test_app_refuses_to_start_on_sha_mismatch(
    make_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="scoring")
    app = create_app(make_settings(model_sha256="e" * 64))
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        with TestClient(app):
            pass
    assert app.model is None
    assert any("refusing to start: sha256 mismatch" in r.getMessage() for r in caplog.records)
    assert TestClient(app).get("/").status_code == 503


def test_model_fitted_on_a_frame_serves_without_warnings(
    tmp_path: Path, model_folder_factory: Callable[..., Path], make_settings: Settings
) -> None:
    folder = model_folder_factory(tmp_path / "m", fit_on_frame=True)
    model = load_model(
        make_settings(model_dir=folder, model_sha256=sha256_file(folder / "model.joblib"))
    )
    assert model.fast_path is True
    golden = json.loads((folder / "golden.json").read_text())
    predictions = model.predict(np.asarray(golden["data"]))
    np.testing.assert_allclose(predictions, golden["predictions"], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("estimator", "fast_path"),
    [
        ("ridge", True),
        ("elasticnet", True),
        ("hist_gradient_boosting", False),
        ("random_forest", False),
    ],
)
def test_loads_what_training_writes(
    tmp_path: Path, make_settings: Settings, estimator: str, fast_path: bool
) -> None:
    # The contract with training/: the folder its command writes is served as is, whatever
    # estimator the configuration names; linear ones take the closed form.
    from training.data import reference_dataset, to_training_frame
    from training.params import TrainingParams
    from training.train import train, write_artifacts

    params = TrainingParams(estimator=estimator)  # type: ignore[arg-type]
    result = train(to_training_frame(reference_dataset()), params)
    paths = write_artifacts(result, tmp_path / "trained")
    settings = make_settings(
        model_dir=tmp_path / "trained", model_sha256=sha256_file(paths["model.joblib"])
    )
    model = load_model(settings)
    assert model.fast_path is fast_path
    assert model.estimator_name == estimator
    assert model.estimator == type(result.model).__name__
    assert model.params == params.model_dump(mode="json")
    assert model.trained_with["scikit-learn"] == result.run["versions"]["scikit-learn"]
    golden = result.golden
    np.testing.assert_allclose(
        model.predict(np.asarray(golden["data"])), golden["predictions"], rtol=1e-9, atol=1e-9
    )
    auth = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    with TestClient(create_app(settings)) as client:
        response = client.post("/score", json={"data": golden["data"]}, headers=auth)
        info = client.get("/model", headers=auth).json()
    assert response.json()["predictions"] == pytest.approx(golden["predictions"], rel=1e-9)
    assert (info["estimator_name"], info["fast_path"]) == (estimator, fast_path)
    assert info["params"]["hyperparameters"] == params.hyperparameters


def test_model_trained_before_estimators_were_named_still_serves(
    tmp_path: Path, model_folder_factory: Callable[..., Path], make_settings: Settings
) -> None:
    # run.json of older versions: Ridge's alpha at the top of params, no estimator name.
    old_params = {"alpha": 0.5, "fit_intercept": True, "holdout_fraction": 0.2, "seed": 42}
    folder = model_folder_factory(tmp_path / "m", params=old_params)
    run = json.loads((folder / "run.json").read_text())
    del run["estimator"]
    (folder / "run.json").write_text(json.dumps(run))
    model = load_model(
        make_settings(model_dir=folder, model_sha256=sha256_file(folder / "model.joblib"))
    )
    assert (model.estimator, model.estimator_name, model.fast_path) == ("Ridge", None, True)
    assert model.info()["estimator_name"] is None
