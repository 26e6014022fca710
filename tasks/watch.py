"""Tasks of the blob watcher: read the shared marks, list the container, announce, mark.

I/O tasks retry (blob storage and the Prefect API are network services); their inputs are
clients: no caching.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from core.blob_events import event_for
from core.interfaces import BlobRef, DataLake
from core.watch import Mark, WatchState
from tasks.events import send_events


@task(name="read-watch-state", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def read_watch_state(state: WatchState) -> dict[str, Mark]:
    """The marks of the blobs announced so far, by name."""
    return state.read()


@task(name="list-container", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def list_container(
    datalake: DataLake, container: str, state_container: str, prefix: str
) -> list[BlobRef]:
    """Every blob in ``container`` under ``prefix`` (both containers are created if missing)."""
    datalake.ensure_containers(container, state_container)
    return datalake.list(container, prefix)


@task(name="announce-blobs", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def announce_blobs(refs: list[BlobRef]) -> list[str]:
    """Emit one ``azure.storage.blob.created`` event per blob; returns their event ids.

    Unlike ``emit_event`` (a background queue that logs and drops what it cannot send), the
    events go out on a client of our own: a failure fails the task (so nothing gets marked),
    and the task returns only after the connection closed cleanly, i.e. after the server
    received every event.
    """
    events = send_events([event_for(ref) for ref in refs])
    logger = get_run_logger()
    for ref, event in zip(refs, events, strict=True):
        logger.info("announced %s (etag %s, event %s)", ref.name, ref.etag, event.id)
    return [str(event.id) for event in events]


@task(name="mark-announced", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def mark_announced(
    state: WatchState, announced: dict[str, Mark], forget: dict[str, str]
) -> dict[str, Mark]:
    """Record the announced blobs and forget departed ones, without losing concurrent marks."""
    return state.record(announced, forget)
