"""Command line training run: ``python -m training.train --data FILE --output DIR``.

Reads a CSV or Parquet file, splits it by row hash, fits the estimator the parameters name
(``ridge`` by default), scores it on the holdout and writes ``model.joblib``, ``metrics.json``,
``run.json`` and ``golden.json`` (``training.artifacts``) to DIR.

``--hyperparameter NAME=VALUE`` (repeatable) sets one hyperparameter on top of ``--params``
(an Azure ML sweep passes each trial's values so); ``--mlflow`` also logs the holdout
metrics to MLflow (``training.tracking``), which a sweep job reads its objective from.
With ``--decision DIR2`` it also writes the decision record ``DIR2/decision.json``
(``training.decision``); with ``--champion FOLDER`` (plus ``--champion-version`` and
``--champion-sha256``) the record holds the champion scored on the same holdout. Every
compute backend runs this command, so the job, not the worker, loads both models.
Exit code 0 on success, 2 on bad input (missing file, unreadable data, bad parameters, a
champion that does not match its digest or cannot be loaded here).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sklearn.base import RegressorMixin

from training import model as model_io
from training.artifacts import GOLDEN_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, sha256_file
from training.chunks import read_training_frame
from training.data import DataFormatError, fingerprint, split
from training.decision import ChampionScore, build_record, score_champion, write_record
from training.evaluate import Metrics, score
from training.params import TrainingParams, describe
from training.schema import FEATURES, TARGET
from training.tracking import log_metrics

logger = logging.getLogger(__name__)

GOLDEN_ROWS = 20
# The scoring image is pinned to these and refuses a model trained with other versions,
# because joblib pickles are only guaranteed to load under the versions that wrote them.
PINNED_PACKAGES = ("scikit-learn", "numpy", "pandas", "joblib", "scipy")


@dataclass(frozen=True)
class TrainingResult:
    """Everything a training run produces, before it is written to disk."""

    model: RegressorMixin
    metrics: Metrics
    n_train: int
    n_holdout: int
    run: dict[str, Any]
    golden: dict[str, list[Any]]
    holdout: pd.DataFrame  # the rows scored: the champion is scored on these too


def parse_params(value: str | None) -> TrainingParams:
    """Build training parameters from a JSON string or the path of a JSON file.

    Args:
        value: ``None`` for the defaults, inline JSON (text starting with ``{`` or ``[``),
            or a path to a file holding a JSON object.

    Returns:
        The validated parameters.

    Raises:
        OSError: The file cannot be read.
        ValueError: The text is not a JSON object, or a value is invalid or unknown
            (``json.JSONDecodeError`` is one; invalid parameters are described in one line).
    """
    if value is None:
        return TrainingParams()
    # JSON text starts with a bracket; anything else is taken for a file name.
    inline = value.lstrip().startswith(("{", "["))
    text = value if inline else Path(value).read_text(encoding="utf-8")
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"params must be a JSON object, got {type(raw).__name__}")
    try:
        return TrainingParams.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid params: {describe(exc)}") from None


def library_versions() -> dict[str, str]:
    """Return the installed versions of the packages the model file depends on."""
    return {name: version(name) for name in PINNED_PACKAGES}


def train(frame: pd.DataFrame, params: TrainingParams) -> TrainingResult:
    """Split, fit and score: the whole run in memory.

    Args:
        frame: A training frame (see ``training.data.to_training_frame``).
        params: The training parameters.

    Returns:
        The model, its holdout metrics and the contents of ``run.json``/``golden.json``.

    Raises:
        DataFormatError: Too few rows to train and score (the holdout needs 2 rows).
    """
    n_rows, data_fingerprint = len(frame), fingerprint(frame)
    train_rows, holdout = split(frame, params.holdout_fraction, params.seed)
    # The caller may hand over its only reference (main does): the whole set is freed here,
    # before fitting copies the training rows again (10M rows: ~0.9 GB less at the peak).
    del frame
    if len(holdout) < 2:
        raise DataFormatError(
            "data",
            f"{n_rows} rows give a holdout of {len(holdout)} row(s); scoring needs at "
            "least 2: supply more rows or raise holdout_fraction",
        )
    model = model_io.fit(train_rows, params)
    metrics = score(model, holdout)
    logger.info(
        "holdout rmse=%.4f mae=%.4f r2=%.4f (train %d, holdout %d rows)",
        metrics.rmse, metrics.mae, metrics.r2, len(train_rows), len(holdout),
    )  # fmt: skip
    sample = holdout.head(GOLDEN_ROWS)
    golden = {
        "data": sample[list(FEATURES)].to_numpy(dtype=float).tolist(),
        "predictions": model_io.predict(model, sample).tolist(),
    }
    run = {
        # Also inside "params" (with the resolved hyperparameters); on top for readers
        # such as the scoring service's GET /model that only want the name.
        "estimator": params.estimator,
        "params": params.model_dump(mode="json"),
        "params_digest": params.digest(),
        "data_fingerprint": data_fingerprint,
        "n_rows": n_rows,
        "features": list(FEATURES),
        "target": TARGET,
        "python_version": platform.python_version(),
        "versions": library_versions(),
    }
    return TrainingResult(model, metrics, len(train_rows), len(holdout), run, golden, holdout)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_artifacts(result: TrainingResult, output_dir: Path) -> dict[str, Path]:
    """Write the model and its JSON companions into a directory.

    Args:
        result: What ``train`` returned.
        output_dir: The directory; created if missing, existing files are replaced.

    Returns:
        The written paths by file name.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {MODEL_FILE: model_io.save(result.model, output_dir)}
    metrics = {
        **result.metrics.model_dump(mode="json"),
        "n_train": result.n_train,
        "n_holdout": result.n_holdout,
    }
    for name, content in (
        (METRICS_FILE, metrics),
        (RUN_FILE, result.run),
        (GOLDEN_FILE, result.golden),
    ):
        paths[name] = output_dir / name
        _write_json(paths[name], content)
    return paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.train", description="Train the diabetes model."
    )
    parser.add_argument("--data", type=Path, required=True, help="CSV or Parquet file")
    parser.add_argument("--output", type=Path, required=True, help="directory for artifacts")
    parser.add_argument("--params", help="training parameters: a JSON object or a JSON file")
    parser.add_argument("--decision", type=Path, help="directory for decision.json")
    parser.add_argument("--champion", type=Path, help="the champion's model folder")
    parser.add_argument("--champion-version", help="the champion's registry version")
    parser.add_argument("--champion-sha256", help="the registry's digest of its model file")
    parser.add_argument(
        "--hyperparameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set one hyperparameter (a JSON value, else text); repeatable",
    )
    parser.add_argument("--mlflow", action="store_true", help="log the metrics to MLflow")
    return parser


def with_hyperparameters(params: TrainingParams, pairs: list[str]) -> TrainingParams:
    """``params`` with each ``NAME=VALUE`` of ``pairs`` set as a hyperparameter.

    A value is read as JSON (``0.5``, ``3``, ``true``), else as text; ``True``/``False`` (how
    Azure ML writes a boolean choice) are booleans.

    Raises:
        ValueError: A pair has no ``=``, or the result is not valid for the estimator.
    """
    if not pairs:
        return params
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--hyperparameter wants NAME=VALUE, got {pair!r}")
        try:
            overrides[name] = json.loads(text)
        except json.JSONDecodeError:
            overrides[name] = {"True": True, "False": False}.get(text, text)
    raw = params.model_dump(mode="json")
    raw["hyperparameters"] = {**raw["hyperparameters"], **overrides}
    try:
        return TrainingParams.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid hyperparameters: {describe(exc)}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the command line interface.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 2 on bad input or bad usage.
    """
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on usage errors and --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        params = with_hyperparameters(parse_params(args.params), args.hyperparameter)
        # Parquet (the curated set): only the schema columns are read. No name holds the
        # frame here, so train() can free it once split.
        result = train(read_training_frame(args.data, args.data.name), params)
        champion = _champion(args, result.holdout)
    except OSError as exc:
        sys.stderr.write(f"training: error: cannot read {exc.filename}: {exc.strerror}\n")
        return 2
    except ValueError as exc:
        # Bad data or parameters (DataFormatError, JSON and parameter errors are ValueErrors):
        # a clear message beats a traceback.
        sys.stderr.write(f"training: error: {exc}\n")
        return 2
    paths = write_artifacts(result, args.output)
    if args.decision is not None:
        record = build_record(
            challenger=result.metrics,
            challenger_sha256=sha256_file(paths[MODEL_FILE]),
            champion=champion,
            holdout=result.holdout,
            n_train=result.n_train,
            run=result.run,
        )
        paths["decision"] = write_record(record, args.decision)
    logger.info("wrote %s", ", ".join(str(path) for path in paths.values()))
    if args.mlflow:
        try:
            log_metrics(result.metrics)
        except ImportError as exc:  # an environment built without the tracking packages
            sys.stderr.write(f"training: error: --mlflow needs mlflow installed: {exc}\n")
            return 2
    return 0


def _champion(args: argparse.Namespace, holdout: pd.DataFrame) -> ChampionScore | None:
    if args.champion is None:
        return None
    champion = score_champion(args.champion, holdout, args.champion_version, args.champion_sha256)
    logger.info(
        "champion %s on the same holdout: rmse=%.4f r2=%.4f",
        champion.version, champion.metrics.rmse, champion.metrics.r2,
    )  # fmt: skip
    return champion


if __name__ == "__main__":
    sys.exit(main())
