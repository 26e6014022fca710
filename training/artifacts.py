"""The model folder's file names, its model-file hash and its golden requests.

Standard library only: this module ships inside the scoring image beside
``training/schema.py``, where neither NumPy nor scikit-learn may be assumed to be
importable before the service has checked the model's recorded library versions.

A model folder, as ``python -m training.train`` writes it:

- ``model.joblib`` (``MODEL_FILE``): the fitted estimator; the registry records its sha256.
- ``run.json`` (``RUN_FILE``): parameters, estimator, data fingerprint, library versions.
- ``metrics.json`` (``METRICS_FILE``): holdout metrics.
- ``golden.json`` (``GOLDEN_FILE``): holdout rows and the model's own predictions for them,
  the self-check of the scoring service and the smoke test's expected answers.

Beside the folder, in the job's own output, the job writes ``decision.json``
(``DECISION_FILE``, ``training.decision``): challenger and champion scored on one holdout,
all the worker reads to judge the challenger.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FILE = "model.joblib"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
GOLDEN_FILE = "golden.json"
DECISION_FILE = "decision.json"

_CHUNK = 1 << 20  # 1 MiB: bounded memory for any model size


class GoldenError(ValueError):
    """``golden.json`` exists but does not hold rows and predictions; the message says why."""


@dataclass(frozen=True)
class Golden:
    """Golden requests: holdout rows and what the model predicted for each.

    Attributes:
        rows: Feature rows, all of the same width, finite numbers.
        predictions: One finite prediction per row.
    """

    rows: list[list[float]]
    predictions: list[float]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: ``{"data": rows, "predictions": predictions}``."""
        return {"data": self.rows, "predictions": self.predictions}


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks.

    Args:
        path: The file.

    Returns:
        64 lower-case hex characters.

    Raises:
        OSError: The file cannot be read (``FileNotFoundError`` when it does not exist).
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_golden(folder: Path, n_features: int | None = None) -> Golden:
    """Read and check ``golden.json`` of a model folder.

    Args:
        folder: The model folder.
        n_features: The width every row must have; ``None`` only requires equal widths.

    Returns:
        The rows and predictions, as floats.

    Raises:
        FileNotFoundError: The folder has no ``golden.json``.
        GoldenError: The file is not JSON, or not ``{"data": [[...], ...], "predictions":
            [...]}`` with as many finite predictions as rows of finite numbers, non-empty.
    """
    path = Path(folder) / GOLDEN_FILE
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise GoldenError(f"{path} is malformed: cannot read it as JSON ({exc})") from exc
    try:
        return parse_golden(content, n_features)
    except GoldenError as exc:
        raise GoldenError(f"{path} is malformed: {exc}") from None


def parse_golden(content: Any, n_features: int | None = None) -> Golden:
    """Check parsed golden content (see ``read_golden``) and return it as floats.

    Args:
        content: The parsed JSON.
        n_features: The width every row must have; ``None`` only requires equal widths.

    Returns:
        The rows and predictions.

    Raises:
        GoldenError: The content is not the golden shape; the message names the problem.
    """
    if not isinstance(content, dict):
        raise GoldenError('expected an object {"data": [[...], ...], "predictions": [...]}')
    rows, predictions = content.get("data"), content.get("predictions")
    if not isinstance(rows, list) or not isinstance(predictions, list) or not rows:
        raise GoldenError('"data" and "predictions" must be non-empty lists')
    if len(rows) != len(predictions):
        raise GoldenError(f"{len(rows)} rows but {len(predictions)} predictions")
    if not all(isinstance(row, list) for row in rows):
        raise GoldenError('every row of "data" must be a list of numbers')
    widths = {len(row) for row in rows}
    if len(widths) != 1 or (n_features is not None and widths != {n_features}):
        wanted = f"{n_features}" if n_features is not None else "equal"
        raise GoldenError(f"rows have widths {sorted(widths)}, expected {wanted}")
    return Golden([[_number(v) for v in row] for row in rows], [_number(v) for v in predictions])


def _number(value: Any) -> float:
    # bool is an int subclass, but true/false in a feature row is a bug, not a 1/0.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GoldenError(f"{value!r} is not a finite number")
    return float(value)
