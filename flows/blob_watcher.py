"""Blob watcher: announce every new or overwritten landing blob as a Prefect event.

In Azure, Event Grid announces new blobs (``Microsoft.Storage.BlobCreated``). Azurite has no
Event Grid and the open-source Prefect server has no webhooks, so locally this flow polls: it
lists the landing container every ``poll_seconds``, compares names and etags
with the marks every watcher shares (``core.watch.WatchState``: a JSON blob in the curated
container, written with etag conditions) and emits ONE event per new blob::

    event:    azure.storage.blob.created
    resource: prefect.resource.id = <blob URL>, prefect.resource.name = <blob name>,
              azure.storage.container, azure.storage.account
    related:  azure.storage.container.<account>.<container> (role container),
              azure.storage.account.<account> (role account), and the watcher's flow run
    payload:  Event Grid's BlobCreated data: api, url, eTag, contentLength, blobType,
              plus container and name

The retraining deployment's trigger reacts to that event (``data_uri`` = the resource id).

Why one run polls many times (``watch_seconds``) instead of a schedule every few seconds: a
deployed run is a new process (Python, Prefect and this module: ~3-5 s of CPU on this
2-core machine), so a 5 s schedule would keep a core busy and write ~720 runs an hour to the
server, and the poll would wait for the worker's pickup and that start-up each time. A run
that keeps polling pays them once a minute and polls cost one marks read and one listing.
The deployment's schedule (every 60 s, ``watch_seconds`` 90: a start-up took 20 s on a
loaded machine) starts the next run before the last ends: no gap, and a run that died is
replaced within a minute. Its concurrency limit (2) allows that overlap; two watchers at
once are safe (marks merged, below).

Safety: events are sent (and the connection closed cleanly) BEFORE the blobs are marked, so a
crash can cause a duplicate announcement but never a missed one; duplicates are harmless
because retraining is replay-safe. Two watchers at once may both announce a blob; neither
loses the other's marks (conditional writes, merged and retried). Blobs that left landing
(processed) are no longer listed and their marks are forgotten; a blob still waiting
``reannounce_after_seconds`` (15 s) after its announcement is announced again unless a
retraining run that drains landing was created after it landed and has not finished (that
run has it in hand: being validated, or queued behind the run before it). Otherwise its event
started no run that took it: it landed within the retraining trigger's 10 s window after a
run that had already listed landing, and the window absorbed its event; announced again after
the window, it starts a run of its own ~15-20 s after it landed, not minutes later.

In a real Azure deployment nothing polls: Event Grid delivers ``BlobCreated`` to a relay that
emits the very same event (``core.blob_events.from_event_grid`` builds it): a small Azure
Function that sends it to the Prefect events API, or a Prefect Cloud webhook whose template
has that shape; ``deployments/README.md`` shows both. The retraining trigger does not change.
There, this flow may still run now and then (hourly, say) as a safety net that re-announces
blobs whose event started no run that took them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger

from core.interfaces import DataLake
from core.results import WatchReport
from core.settings import get_settings
from core.watch import Mark, WatchState, departed, next_poll_in, pending
from flows.resources import default_backends
from tasks.watch import (
    announce_blobs,
    mark_announced,
    newest_landing_taker,
    poll_container,
    prepare_containers,
)


@flow(name="blob-watcher")
def blob_watcher(
    container: str | None = None,
    prefix: str = "",
    reannounce_after_seconds: float | None = 15.0,
    watch_seconds: float = 0.0,
    poll_seconds: float | None = None,
    datalake: DataLake | None = None,
    taker: str | None = "retraining",
) -> WatchReport:
    """Announce the blobs of ``container`` that were not announced in their current version.

    Args:
        container: The watched container; default: the landing container from settings.
        prefix: Only watch blobs whose names start with this.
        reannounce_after_seconds: Announce a blob again when it is still in the container
            this long after its announcement and no run of ``taker`` will take it (its event
            started no run that took it, e.g. it was absorbed by the retraining trigger's
            10 s window: so this is a bit longer than that window); None: never.
        watch_seconds: Keep polling this long (0: one pass). The deployment polls for a bit
            longer than its schedule's interval.
        poll_seconds: Seconds between polls; default ``Settings.watch_interval_seconds``.
        datalake: The blob storage to watch; default: the settings' profile's.
        taker: The flow whose unfinished runs take what waits in the container: a blob that
            landed before such a run was created is not announced again; None: no such flow.

    Returns:
        What was listed (last poll), announced (``reannounced``: announced before) and
        forgotten (names whose blobs left the container), over every poll.
    """
    settings = get_settings()
    datalake = datalake or default_backends(settings).datalake
    watched = container or settings.landing_container
    state = WatchState(datalake, settings.curated_container, watched)
    again = (
        None if reannounce_after_seconds is None else timedelta(seconds=reannounce_after_seconds)
    )
    interval = poll_seconds or settings.watch_interval_seconds
    deadline = time.monotonic() + max(0.0, watch_seconds)

    prepare_containers(datalake, watched, settings.curated_container)
    report = WatchReport(container=watched, listed=0, announced=[], reannounced=[], forgotten=[])
    polls = 0
    while True:
        last_poll = time.monotonic()
        report = _poll(report, state, datalake, watched, prefix, again, taker)
        polls += 1
        pause = next_poll_in(last_poll, interval, deadline, time.monotonic())
        if pause is None:
            break
        time.sleep(pause)
    get_run_logger().info(
        "%s: %d poll(s), %d blob(s) listed last, %d announcement(s)%s",
        watched,
        polls,
        report.listed,
        len(report.announced),
        f": {', '.join(report.announced)}" if report.announced else "",
    )
    return report


def _poll(
    report: WatchReport,
    state: WatchState,
    datalake: DataLake,
    watched: str,
    prefix: str,
    again: timedelta | None,
    taker: str | None,
) -> WatchReport:
    """One poll: announce what is new, mark it, forget departed blobs; ``report`` plus it."""
    # The marks are read BEFORE listing: only then is forgetting departed ones safe.
    marks, listing = poll_container(state, datalake, watched, prefix)
    new = pending(listing, marks, reannounce_after=again)
    if taker is not None and any(r.name in marks and marks[r.name].etag == r.etag for r in new):
        # Only a blob no run will take is announced again (``core.watch.pending``).
        new = pending(
            listing, marks, reannounce_after=again, taker_since=newest_landing_taker(taker)
        )
    gone = departed(marks, listing, prefix)
    if new:
        announce_blobs(new)  # first announce, then mark: a crash between them re-announces
    if new or gone:
        now = datetime.now(UTC)
        mark_announced(state, {ref.name: Mark(ref.etag, now) for ref in new}, gone)
    repeated = [r.name for r in new if r.name in marks and marks[r.name].etag == r.etag]
    return WatchReport(
        container=watched,
        listed=len(listing),
        announced=[*report.announced, *(ref.name for ref in new)],
        reannounced=[*report.reannounced, *repeated],
        forgotten=sorted({*report.forgotten, *gone}),
    )
