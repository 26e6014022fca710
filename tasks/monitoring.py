"""Tasks of the monitoring flow: read a collected window, validate it, judge drift, join
labels, record and announce. The statistics live in ``training/drift.py`` and
``training/labels.py``; the lake layout in ``core/collected_lake.py``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from core import provenance
from core.collected_lake import CheckRecord, CollectedLake
from core.events import EventSpec
from core.interfaces import ConflictError
from core.lake import Lake, basename
from expectations.build_suite import SCORING_SUITE_PATH
from expectations.validate import ValidationReport, validate_frame
from tasks.events import send_events
from training import drift, labels
from training.data import reference_dataset
from training.schema import FEATURES, TARGET


@dataclass(frozen=True)
class LabelJoin:
    """What one check joined: the landing files written, the labelled rows, the problems."""

    landing: list[str] = field(default_factory=list)
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    problems: list[str] = field(default_factory=list)

    @property
    def error(self) -> drift.LiveError | None:
        """Live error of the newly labelled predictions (None: no new labels)."""
        if self.rows.empty:
            return None
        return drift.live_error(
            self.rows[drift.PREDICTION].to_numpy(), self.rows[TARGET].to_numpy()
        )


@task(name="read-window", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def read_window(
    collected: CollectedLake, environment: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """The rows ``environment`` collected in windows starting in ``[start, end)``."""
    refs = collected.window_blobs(environment, start, end)
    return drift.rows_frame(drift.parse_rows(collected.lines(refs)))


@task(name="training-reference", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def training_reference(lake: Lake) -> pd.DataFrame:
    """The features the model was trained on: the curated set (the reference data set
    before anything was curated)."""
    curated = lake.curated_set()
    frame = lake.load_curated(curated) if curated else reference_dataset()
    return frame[list(FEATURES)]


@task(name="validate-window", cache_policy=NONE)
def validate_window(frame: pd.DataFrame, file: str, docs_dir: Path) -> ValidationReport:
    """The window's inputs against the ``scoring_inputs`` suite (Data Docs page included)."""
    return validate_frame(
        frame[list(FEATURES)], file=file, docs_dir=docs_dir, suite_path=SCORING_SUITE_PATH
    )


@task(name="prediction-reference", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def prediction_reference(
    collected: CollectedLake, frame: pd.DataFrame, min_rows: int, window_start: str
) -> np.ndarray | None:
    """The reference predictions of the window's main model version; a version's first
    window of ``min_rows`` rows becomes its reference (and is not compared with itself)."""
    if frame.empty:
        return None
    top = frame[["model", "version"]].value_counts().index[0]
    model, version = str(top[0]), str(top[1])
    saved = collected.prediction_reference(model, version)
    if saved is not None:
        return np.asarray(saved, dtype=float)
    mine = frame[(frame["model"] == model) & (frame["version"] == version)]
    if len(mine) >= min_rows:
        values = [float(v) for v in mine[drift.PREDICTION]]
        collected.save_prediction_reference(model, version, values, window_start)
    return None


@task(name="detect-drift", cache_policy=NONE)
def detect_drift(
    reference: pd.DataFrame,
    frame: pd.DataFrame,
    thresholds: drift.Thresholds,
    predictions: np.ndarray | None,
) -> drift.DriftReport:
    return drift.detect_drift(reference, frame, thresholds, predictions)


@task(name="join-labels", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def join_new_labels(
    collected: CollectedLake, lake: Lake, environment: str, start: datetime, end: datetime
) -> LabelJoin:
    """Join each label file not joined before to the rows collected in ``[start, end)``;
    the labelled rows become a landing file marked ``origin=labels`` (retraining's Great
    Expectations gate checks them with the ``labelled_rows`` suite, core/provenance.py).
    A label file is marked joined once its rows are written; one that matched nothing stays
    pending (its rows may not have been flushed yet), one that cannot be read is marked
    with the reason."""
    pending = collected.unjoined_labels()
    if not pending:
        return LabelJoin()
    rows = drift.rows_frame(
        drift.parse_rows(collected.lines(collected.window_blobs(environment, start, end)))
    )
    result = LabelJoin()
    for ref in pending:
        try:
            parsed = labels.parse_labels(collected.read(ref), ref.name)
        except labels.LabelFormatError as exc:
            collected.mark_joined(ref, {"error": str(exc)})
            result.problems.append(str(exc))
            continue
        joined = labels.join_labels(rows, parsed)
        if joined.rows.empty:
            result.problems.append(f"{ref.name}: no collected row matches yet")
            continue
        content = labels.training_csv(joined.rows)
        digest = hashlib.sha256(content).hexdigest()
        stem = basename(ref.name).rsplit(".", 1)[0]
        name = f"labelled-{stem}-{digest[:8]}.csv"
        # The metadata makes retraining validate them with the labelled_rows suite.
        metadata = provenance.labelled_metadata(digest)
        try:  # the same labels joined to the same rows: the same name and bytes
            lake.datalake.put(lake.landing, name, content, metadata=metadata, if_none_match=True)
        except ConflictError:
            pass
        collected.mark_joined(
            ref, {"landing": name, "rows": len(joined.rows), "unmatched": joined.unmatched}
        )
        result.landing.append(name)
        frames = [f for f in (result.rows, joined.rows) if not f.empty]
        object.__setattr__(result, "rows", pd.concat(frames, ignore_index=True))
    return result


@task(name="record-check", retries=2, retry_delay_seconds=2, cache_policy=NONE)
def record_check(collected: CollectedLake, record: CheckRecord, stamp: str) -> None:
    """``monitoring/latest.json`` and its history copy (what ``mlops status`` shows)."""
    collected.record_check(record, stamp)


@task(name="check-history", cache_policy=NONE)
def check_history(collected: CollectedLake, environment: str, last: int) -> list[CheckRecord]:
    return collected.history(environment, last)


@task(name="announce-drift", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def announce_drift(spec: EventSpec) -> None:
    """Send ``mlops.drift.detected`` and wait for the server to confirm it: it starts a run."""
    send_events([spec])
