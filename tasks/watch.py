"""Tasks of the blob watcher: read the shared marks, list the container, announce, mark.

I/O tasks retry (blob storage and the Prefect API are network services); their inputs are
clients: no caching.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.events.related import related_resources_from_run_context
from prefect.utilities.asyncutils import run_coro_as_sync

from core.blob_events import EventSpec, event_for
from core.interfaces import BlobRef, DataLake
from core.watch import Mark, WatchState


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
    events = run_coro_as_sync(_send([event_for(ref) for ref in refs])) if refs else []
    logger = get_run_logger()
    for ref, event in zip(refs, events, strict=True):
        logger.info("announced %s (etag %s, event %s)", ref.name, ref.etag, event.id)
    return [str(event.id) for event in events]


async def _send(specs: list[EventSpec]) -> list[Event]:
    async with get_client() as client:
        # What emit_event attaches too: the flow run, flow, deployment... that announced.
        context = await related_resources_from_run_context(client)
    events = [
        Event.model_validate(
            {
                "event": spec.event,
                "resource": spec.resource,
                "related": [*spec.related, *context],
                "payload": spec.payload,
            }
        )
        for spec in specs
    ]
    async with get_events_client() as emitter:
        for event in events:
            await emitter.emit(event)
    return events


@task(name="mark-announced", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def mark_announced(
    state: WatchState, announced: dict[str, Mark], forget: dict[str, str]
) -> dict[str, Mark]:
    """Record the announced blobs and forget departed ones, without losing concurrent marks."""
    return state.record(announced, forget)
