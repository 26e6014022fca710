"""Data-arrival detection without Event Grid: which landing blobs still need announcing.

In Azure, Event Grid announces every new blob (``Microsoft.Storage.BlobCreated``). Azurite has
no Event Grid, so the ``blob-watcher`` flow polls the landing container and compares what it
lists with what was announced before. This module is that logic, free of Prefect:

- ``WatchState``: the announced marks (name -> etag, when), one JSON blob in the curated container
  (``watcher/<container>.json``) written with etag conditions: every watcher, on any machine,
  sees the same marks, and two watchers writing at once never lose each other's marks.
- ``pending``: listed blobs whose etag is not the marked one (new names and overwrites), and
  blobs announced long ago that still wait in the container (their event went unanswered).
- ``departed``: marks of blobs that left the container (processed): safe to forget.

The event a new blob produces is built by ``core.blob_events`` (shared with the Azure relay).

The watcher announces first and marks after: a crash in between announces the blob again on
the next run (harmless: retraining is replay-safe), and nothing is marked before its event was
sent, so no blob is ever announced zero times.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.interfaces import BlobRef, ConflictError, DataLake, NotFoundError

log = logging.getLogger(__name__)

STATE_PREFIX = "watcher/"
MARK_ATTEMPTS = 20


@dataclass(frozen=True)
class Mark:
    """A blob version that was announced, and when."""

    etag: str
    at: datetime


# --------------------------------------------------------------------------- diffing
def pending(
    listing: Iterable[BlobRef],
    marks: Mapping[str, Mark],
    now: datetime | None = None,
    reannounce_after: timedelta | None = None,
    taker_since: datetime | None = None,
) -> list[BlobRef]:
    """Blobs to announce, oldest first: never announced in this version (new name or another
    etag), or, with ``reannounce_after``, announced that long ago and still waiting (a
    retraining run that absorbed or lost the event has not taken them).

    ``taker_since``: when the newest run that will take every waiting blob (a retraining run
    that drains landing, not finished) was created. Such a run lists landing after its
    creation, so a blob that landed before that is in its hands (being validated, or queued
    behind the run before it): announcing it again would only queue a run with nothing to do.
    """
    now = now or datetime.now(UTC)

    def due(ref: BlobRef) -> bool:
        mark = marks.get(ref.name)
        if mark is None or mark.etag != ref.etag:
            return True
        if reannounce_after is None or now - mark.at < reannounce_after:
            return False
        return taker_since is None or taker_since < (ref.last_modified or mark.at)

    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(filter(due, listing), key=lambda ref: (ref.last_modified or oldest, ref.name))


def departed(
    marks: Mapping[str, Mark], listing: Iterable[BlobRef], prefix: str = ""
) -> dict[str, str]:
    """``name -> etag`` of the marks (under ``prefix``) whose blob is not in ``listing``.

    Forgetting them is safe only if ``marks`` were read BEFORE the listing was taken: then the
    blob was gone when listed, and a blob written later under that name has a new etag, so it
    is announced whether its old mark is forgotten or not.
    """
    present = {ref.name for ref in listing}
    return {
        name: mark.etag
        for name, mark in marks.items()
        if name.startswith(prefix) and name not in present
    }


def merge_marks(
    current: Mapping[str, Mark], announced: Mapping[str, Mark], forget: Mapping[str, str]
) -> dict[str, Mark]:
    """``current`` plus the new marks, minus forgotten marks another watcher has not renewed."""
    merged = {name: mark for name, mark in current.items() if forget.get(name) != mark.etag}
    merged.update(announced)
    return merged


def next_poll_in(last_poll: float, interval: float, deadline: float, now: float) -> float | None:
    """Seconds a long-running watcher waits before its next poll (polls start ``interval``
    apart, on the clock of ``now``); None when that poll would start after ``deadline``.

    >>> next_poll_in(last_poll=10.0, interval=5.0, deadline=70.0, now=11.5)
    3.5
    >>> next_poll_in(last_poll=68.0, interval=5.0, deadline=70.0, now=68.2) is None
    True
    """
    due = last_poll + interval
    if due > deadline:
        return None
    return max(0.0, due - now)


# --------------------------------------------------------------------------- shared state
class WatchState:
    """The announced marks of one watched container, kept in a blob every watcher shares.

    Args:
        datalake: The data lake holding the state blob.
        container: The container that holds the state blob (the curated container).
        watched: The watched container; names the state blob.
    """

    def __init__(self, datalake: DataLake, container: str, watched: str) -> None:
        self.datalake = datalake
        self.container = container
        self.watched = watched
        self.name = f"{STATE_PREFIX}{watched}.json"

    def read(self) -> dict[str, Mark]:
        """The marks as stored now (empty before the first announcement)."""
        return self._load()[0]

    def record(self, announced: Mapping[str, Mark], forget: Mapping[str, str]) -> dict[str, Mark]:
        """Add ``announced`` and drop ``forget`` (see ``merge_marks``) without losing a mark
        another watcher wrote meanwhile: read, merge, write if unchanged since read, repeat.

        Returns:
            The marks as written.

        Raises:
            ConflictError: Still losing the race after ``MARK_ATTEMPTS`` tries.
        """
        for attempt in range(MARK_ATTEMPTS):
            current, etag = self._load()
            merged = merge_marks(current, announced, forget)
            if merged == current and etag is not None:
                return merged
            body = {
                "watched": self.watched,
                "updated": datetime.now(UTC).isoformat(),
                "announced": {
                    name: {"etag": mark.etag, "at": mark.at.isoformat()}
                    for name, mark in sorted(merged.items())
                },
            }
            try:
                self.datalake.put(
                    self.container,
                    self.name,
                    json.dumps(body, indent=1).encode(),
                    if_match=etag,
                    if_none_match=etag is None,
                )
                return merged
            except ConflictError:
                log.debug("watch state %s changed meanwhile (try %d)", self.name, attempt + 1)
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
        raise ConflictError(f"could not update {self.container}/{self.name}: too much contention")

    def _load(self) -> tuple[dict[str, Mark], str | None]:
        try:
            blob, ref = self.datalake.get(self.container, self.name)
        except NotFoundError:
            return {}, None
        try:
            marks = {
                str(name): Mark(str(m["etag"]), datetime.fromisoformat(m["at"]).astimezone(UTC))
                for name, m in json.loads(blob)["announced"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Unreadable state only costs duplicate announcements: start afresh, never block.
            log.warning("ignoring unreadable watch state %s: %s", self.name, exc)
            return {}, ref.etag
        return marks, ref.etag
