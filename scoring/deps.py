"""Load and verify the model once at startup; handlers receive the result as a dependency.

Checks, in order, before anything is unpickled: the model file's sha256 equals the
registry's, ``run.json`` names the training's scikit-learn version and it equals the running
one, and the feature names are those of ``training.schema``. After loading: the estimator
takes ``N_FEATURES`` inputs and reproduces ``golden.json`` when the folder has one.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from scoring.settings import ScoringSettings
from training.artifacts import (
    GOLDEN_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    GoldenError,
    read_golden,
    sha256_file,
)
from training.predict import Predictor, close, make_predictor
from training.schema import FEATURES, N_FEATURES

# Keys of run.json holding library versions and feature names (training writes the first).
_VERSION_KEYS = ("versions", "library_versions")
_FEATURE_KEYS = ("features", "feature_names")

logger = logging.getLogger("scoring.model")


class ModelLoadError(RuntimeError):
    """The model folder cannot be served; the message says why."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified, loaded model and what the service tells about it.

    Attributes:
        name: Registered model name.
        version: Registered model version.
        sha256: Verified sha256 of the model file.
        predict: Maps an ``(n, N_FEATURES)`` float64 array to ``n`` predictions.
        estimator: Class name of the estimator.
        estimator_name: The estimator's configuration name from ``run.json`` (e.g.
            ``ridge``, ``random_forest``), ``None`` for a model trained before it was recorded.
        fast_path: Whether ``predict`` is the closed form ``X @ coef_ + intercept_``.
        feature_names: Input columns, in order.
        trained_with: Library versions recorded at training time.
        params: Training parameters from ``run.json``.
        metrics: Evaluation metrics from ``metrics.json`` (empty when absent).
        data_fingerprint: Fingerprint of the training data (``run.json``; empty if absent).
    """

    name: str
    version: str
    sha256: str
    predict: Predictor = field(repr=False)
    estimator: str
    fast_path: bool
    estimator_name: str | None = None
    feature_names: tuple[str, ...] = FEATURES
    trained_with: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""  # of the training data, from run.json

    def info(self) -> dict[str, Any]:
        """Return the JSON-ready description served at ``GET /model``."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "estimator": self.estimator,
            "estimator_name": self.estimator_name,
            "fast_path": self.fast_path,
            "features": list(self.feature_names),
            "trained_with": self.trained_with,
            "serving_with": {lib: installed_version(lib) for lib in sorted(self.trained_with)},
            "params": self.params,
            "metrics": self.metrics,
            "data_fingerprint": self.data_fingerprint,
        }


def installed_version(distribution: str) -> str:
    """Return the installed version of a distribution, or ``"not installed"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_model(settings: ScoringSettings) -> LoadedModel:
    """Verify and load the model folder named by the settings.

    Args:
        settings: The service settings (model folder, name, version, expected sha256).

    Returns:
        The loaded model with its predictor.

    Raises:
        ModelLoadError: The folder is incomplete, the file is not the registered one, the
            scikit-learn version differs from training, or the model fails its self-check.
    """
    folder = settings.model_dir
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise ModelLoadError(f"model file {model_path} does not exist")
    actual = sha256_file(model_path)
    if not hmac.compare_digest(actual, settings.model_sha256):
        raise ModelLoadError(
            f"sha256 mismatch for {model_path}: file has {actual}, registry expects "
            f"{settings.model_sha256} for {settings.model_name}:{settings.model_version}"
        )
    run = _read_json(folder / RUN_FILE, required=True)
    trained_with = _library_versions(run)
    _check_versions(trained_with)
    _check_features(run)

    import joblib  # deferred: importing it (and the unpickled sklearn) is startup-only cost

    try:
        estimator = joblib.load(model_path)
    except Exception as exc:  # a corrupt or foreign pickle: say so, never serve
        raise ModelLoadError(f"cannot unpickle {model_path}: {exc!r}") from exc
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in != N_FEATURES:
        raise ModelLoadError(f"the estimator takes {n_in} features, the schema has {N_FEATURES}")
    predict, fast_path = make_predictor(estimator)
    _check_golden(folder, predict)
    return LoadedModel(
        name=settings.model_name,
        version=settings.model_version,
        sha256=actual,
        predict=predict,
        estimator=type(estimator).__name__,
        fast_path=fast_path,
        estimator_name=_estimator_name(run),
        trained_with=trained_with,
        params=dict(run.get("params") or {}),
        metrics=_read_json(folder / METRICS_FILE, required=False),
        data_fingerprint=str(run.get("data_fingerprint", "")),
    )


def _read_json(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise ModelLoadError(f"{path} does not exist")
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ModelLoadError(f"{path} must hold a JSON object")
    return loaded


def _library_versions(run: dict[str, Any]) -> dict[str, str]:
    for key in _VERSION_KEYS:
        versions = run.get(key)
        if isinstance(versions, dict):
            return {str(lib): str(ver) for lib, ver in versions.items()}
    raise ModelLoadError(f"{RUN_FILE} records no library versions (one of {_VERSION_KEYS})")


def _check_versions(trained_with: dict[str, str]) -> None:
    trained = trained_with.get("scikit-learn", trained_with.get("sklearn"))
    running = installed_version("scikit-learn")
    if trained is None:
        raise ModelLoadError(f"{RUN_FILE} does not record the scikit-learn version")
    if trained != running:
        raise ModelLoadError(
            f"scikit-learn version mismatch: model trained with {trained}, this service runs "
            f"{running}; rebuild the image with scikit-learn=={trained}"
        )
    for lib, version in sorted(trained_with.items()):
        if lib not in ("scikit-learn", "sklearn") and installed_version(lib) != version:
            logger.warning(
                "%s differs: trained %s, serving %s", lib, version, installed_version(lib)
            )


def _check_features(run: dict[str, Any]) -> None:
    names = next((run[key] for key in _FEATURE_KEYS if key in run), None)
    if names is None:
        raise ModelLoadError(f"{RUN_FILE} does not list the feature names (one of {_FEATURE_KEYS})")
    if not isinstance(names, list) or tuple(names) != FEATURES:
        raise ModelLoadError(f"{RUN_FILE} lists features {names}, the schema has {list(FEATURES)}")


def _estimator_name(run: dict[str, Any]) -> str | None:
    # training writes it on top and inside "params"; either is enough.
    name = run.get("estimator", (run.get("params") or {}).get("estimator"))
    return str(name) if name is not None else None


def _check_golden(folder: Path, predict: Predictor) -> None:
    path = folder / GOLDEN_FILE
    try:
        golden = read_golden(folder, N_FEATURES)
    except FileNotFoundError:
        logger.warning("%s absent: skipping the golden self-check", path)
        return
    except GoldenError as exc:
        raise ModelLoadError(str(exc)) from exc
    rows = np.asarray(golden.rows, dtype=np.float64)
    expected = np.asarray(golden.predictions, dtype=np.float64)
    if not close(predict(rows), expected):
        raise ModelLoadError(f"the model does not reproduce {path}: refusing to serve it")
