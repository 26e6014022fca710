"""What the scoring service collects about each scored row, and where it lands in the lake.

Standard library only: the scoring image ships this module beside ``training/schema.py``
(the writer), and the monitoring flow and the label join read the same definitions.

Layout in the lake's ``collected`` container (``Settings.collected_container``):

- ``scoring/<env>/<yyyy>/<mm>/<dd>/<HH>/<window-start>-<writer>.jsonl``: one file per
  writer (a scoring process) and collection window, one JSON object per scored request
  (``CollectedRequest``: its rows as a matrix, columns named by ``columns``, and their
  predictions), which readers expand into ``CollectedRow``, one per row
  (``collected_rows``). One line per request, not per row: one serialiser call per request
  is what keeps collection cheap for the service. Files of the first format, one row per
  line (``CollectedRow.to_json``), are still read. ``window-start`` is
  ``YYYYMMDDTHHMMSSZ`` (UTC) so names sort by time; ``writer`` is unique per process, so
  two replicas never write the same blob.
- ``labels/<name>``: ground truth that arrived later, CSV with the header
  ``request_id,row,target`` (``LABEL_COLUMNS``), joined to collected rows on
  ``(request_id, row)``.

A row is identified by its request id (the ``x-request-id`` the service answers with) and
its index within the request's ``data`` (``row``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from training.schema import FEATURES

COLLECTED_PREFIX = "scoring"
LABELS_PREFIX = "labels"
LABEL_COLUMNS: tuple[str, ...] = ("request_id", "row", "target")
WINDOW_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class CollectedRow:
    """One scored row as collected: inputs, prediction and the model that made it."""

    request_id: str
    row: int  # index of the row within its request
    time: str  # ISO-8601 UTC, when the request was scored
    model: str  # registered model name
    version: str  # registered model version
    data_fingerprint: str  # fingerprint of the model's training data (run.json)
    features: dict[str, float]  # keyed by training.schema.FEATURES
    prediction: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> CollectedRow:
        raw = json.loads(line)
        features = raw["features"]
        missing = [name for name in FEATURES if name not in features]
        if missing:
            raise ValueError(f"collected row {raw.get('request_id')!r} lacks features {missing}")
        return cls(
            request_id=str(raw["request_id"]),
            row=int(raw["row"]),
            time=str(raw["time"]),
            model=str(raw["model"]),
            version=str(raw["version"]),
            data_fingerprint=str(raw["data_fingerprint"]),
            features={name: float(features[name]) for name in FEATURES},
            prediction=float(raw["prediction"]),
        )


@dataclass(frozen=True)
class CollectedRequest:
    """One scored request as the service collects it: one JSON line for all its rows."""

    request_id: str
    time: str  # ISO-8601 UTC, when the request was scored
    model: str
    version: str
    data_fingerprint: str
    columns: tuple[str, ...]  # names of the features' columns, in order
    features: tuple[tuple[float, ...], ...]  # one tuple per row, in ``columns`` order
    predictions: tuple[float, ...]  # one per row

    def to_json(self) -> str:
        raw = asdict(self)
        return json.dumps(raw, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_raw(cls, raw: dict[str, object]) -> CollectedRequest:
        """From a decoded line; raises ValueError when a feature is missing or a row's
        length does not match ``columns`` or the predictions."""
        columns = tuple(str(c) for c in raw["columns"])  # type: ignore[attr-defined]
        missing = [name for name in FEATURES if name not in columns]
        if missing:
            raise ValueError(
                f"collected request {raw.get('request_id')!r} lacks features {missing}"
            )
        features = tuple(tuple(float(v) for v in row) for row in raw["features"])  # type: ignore[attr-defined]
        predictions = tuple(float(p) for p in raw["predictions"])  # type: ignore[attr-defined]
        if len(features) != len(predictions) or any(len(r) != len(columns) for r in features):
            raise ValueError(f"collected request {raw.get('request_id')!r} is malformed")
        return cls(
            request_id=str(raw["request_id"]),
            time=str(raw["time"]),
            model=str(raw["model"]),
            version=str(raw["version"]),
            data_fingerprint=str(raw["data_fingerprint"]),
            columns=columns,
            features=features,
            predictions=predictions,
        )

    def rows(self) -> list[CollectedRow]:
        """Its rows, numbered from 0 in request order."""
        index = [self.columns.index(name) for name in FEATURES]
        return [
            CollectedRow(
                request_id=self.request_id,
                row=number,
                time=self.time,
                model=self.model,
                version=self.version,
                data_fingerprint=self.data_fingerprint,
                features={name: values[i] for name, i in zip(FEATURES, index, strict=True)},
                prediction=prediction,
            )
            for number, (values, prediction) in enumerate(
                zip(self.features, self.predictions, strict=True)
            )
        ]


def collected_rows(lines: Iterable[str]) -> list[CollectedRow]:
    """Every row of window-file lines: one request per line (``CollectedRequest``) or, in
    files of the first format, one row per line (``CollectedRow``); blank lines skipped.

    Raises:
        ValueError: A line is not JSON or lacks a feature.
    """
    rows: list[CollectedRow] = []
    for line in lines:
        if not line.strip():
            continue
        raw = json.loads(line)
        if "predictions" in raw:
            rows.extend(CollectedRequest.from_raw(raw).rows())
        else:
            rows.append(CollectedRow.from_json(line))
    return rows


def window_blob(env: str, window_start: datetime, writer: str) -> str:
    """The blob name (within the collected container) of one writer's window file."""
    start = window_start.astimezone(UTC)
    return (
        f"{COLLECTED_PREFIX}/{env}/{start:%Y/%m/%d/%H}/"
        f"{start.strftime(WINDOW_FORMAT)}-{writer}.jsonl"
    )


def window_start_of(blob: str) -> datetime:
    """The window start a window file's name records (inverse of ``window_blob``)."""
    stem = blob.rsplit("/", 1)[-1]
    return datetime.strptime(stem[: len("YYYYMMDDTHHMMSSZ")], WINDOW_FORMAT).replace(tzinfo=UTC)
