"""The ``collected`` container as the monitoring flow reads and writes it.

Layout beside what the scoring service writes (``training/collected.py``):

- ``monitoring/latest.json`` and ``monitoring/checks/<stamp>.json``: each check's record
  (``CheckRecord``), the latest one overwritten, the history kept; ``mlops status`` reads
  the latest, the report's "live error over time" chart the history.
- ``monitoring/reference/<model>/<version>.json``: the predictions of a model version's
  first window large enough to judge: the reference its later windows' predictions are
  compared with (the flow never loads a model, so it cannot predict the training set).
- ``monitoring/labels-joined/<label file>.json``: which label file (by etag) was joined
  into which landing file: a label file is joined once, however often a check runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.interfaces import BlobRef, ConflictError, DataLake, NotFoundError
from training.collected import COLLECTED_PREFIX, LABELS_PREFIX, window_start_of

MONITORING_PREFIX = "monitoring"
LATEST = f"{MONITORING_PREFIX}/latest.json"
HISTORY_PREFIX = f"{MONITORING_PREFIX}/checks/"
REFERENCE_PREFIX = f"{MONITORING_PREFIX}/reference/"
JOINED_PREFIX = f"{MONITORING_PREFIX}/labels-joined/"


@dataclass(frozen=True)
class CheckRecord:
    """One monitoring check as ``mlops status`` reads it."""

    checked_at: str
    env: str
    window_start: str
    window_end: str
    rows: int
    drifted: bool
    drifted_features: list[str]
    live_rmse: float | None
    flow_run_id: str | None


class CollectedLake:
    """Reads collected windows and labels; writes the monitoring records."""

    def __init__(self, datalake: DataLake, container: str) -> None:
        self.datalake = datalake
        self.container = container

    def ensure(self) -> None:
        self.datalake.ensure_containers(self.container)

    def window_blobs(self, env: str, start: datetime, end: datetime) -> list[BlobRef]:
        """The window files of ``env`` whose window starts in ``[start, end)``, oldest first.
        Listed one hour folder at a time, so a check reads no more of the listing than its
        window spans."""
        refs = []
        for hour in _hours(start, end):
            prefix = f"{COLLECTED_PREFIX}/{env}/{hour:%Y/%m/%d/%H}/"
            for ref in self.datalake.list(self.container, prefix=prefix):
                if ref.name.endswith(".jsonl") and start <= window_start_of(ref.name) < end:
                    refs.append(ref)
        return sorted(refs, key=lambda r: r.name.rsplit("/", 1)[-1])

    def lines(self, refs: list[BlobRef]) -> Iterator[str]:
        for ref in refs:
            content, _ = self.datalake.get(self.container, ref.name)
            yield from content.decode().splitlines()

    # ------------------------------------------------------------------ labels
    def unjoined_labels(self) -> list[BlobRef]:
        """Label files not joined yet (a file uploaded again under its name counts as new)."""
        joined = {}
        for ref in self.datalake.list(self.container, prefix=JOINED_PREFIX):
            joined[ref.name.removeprefix(JOINED_PREFIX).removesuffix(".json")] = ref
        pending = []
        for ref in self.datalake.list(self.container, prefix=f"{LABELS_PREFIX}/"):
            marker = joined.get(ref.name)
            if marker is None or self._marker(marker)["etag"] != ref.etag:
                pending.append(ref)
        return pending

    def read(self, ref: BlobRef) -> bytes:
        content, _ = self.datalake.get(self.container, ref.name)
        return content

    def mark_joined(self, ref: BlobRef, record: dict[str, Any]) -> None:
        """Record that the version ``ref`` names was joined (``record``: what became of it)."""
        body = {"label_file": ref.name, "etag": ref.etag, **record}
        self.datalake.put(self.container, f"{JOINED_PREFIX}{ref.name}.json", _json(body))

    def _marker(self, ref: BlobRef) -> dict[str, Any]:
        content, _ = self.datalake.get(self.container, ref.name)
        marker: dict[str, Any] = json.loads(content)
        return marker

    # ------------------------------------------------------------------ prediction reference
    def prediction_reference(self, model: str, version: str) -> list[float] | None:
        try:
            content, _ = self.datalake.get(self.container, _reference_name(model, version))
        except NotFoundError:
            return None
        values: list[float] = json.loads(content)["predictions"]
        return values

    def save_prediction_reference(
        self, model: str, version: str, predictions: list[float], window_start: str
    ) -> None:
        """The first reference of a version stays: a concurrent check's write loses."""
        body = {"model": model, "version": version, "window_start": window_start}
        try:
            self.datalake.put(
                self.container,
                _reference_name(model, version),
                _json({**body, "predictions": predictions}),
                if_none_match=True,
            )
        except ConflictError:
            pass

    # ------------------------------------------------------------------ check records
    def record_check(self, record: CheckRecord, stamp: str) -> None:
        body = _json(asdict(record))
        self.datalake.put(self.container, f"{HISTORY_PREFIX}{stamp}.json", body)
        self.datalake.put(self.container, LATEST, body)

    def latest_check(self) -> CheckRecord | None:
        try:
            content, _ = self.datalake.get(self.container, LATEST)
        except NotFoundError:
            return None
        return CheckRecord(**json.loads(content))

    def history(self, env: str, last: int) -> list[CheckRecord]:
        """The last ``last`` check records of ``env``, oldest first."""
        refs = sorted(
            self.datalake.list(self.container, prefix=HISTORY_PREFIX), key=lambda r: r.name
        )
        records = []
        for ref in reversed(refs):
            content, _ = self.datalake.get(self.container, ref.name)
            record = CheckRecord(**json.loads(content))
            if record.env == env:
                records.append(record)
            if len(records) == last:
                break
        return records[::-1]


def _reference_name(model: str, version: str) -> str:
    return f"{REFERENCE_PREFIX}{model}/{version}.json"


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield hour
        hour += timedelta(hours=1)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2, allow_nan=False).encode()
