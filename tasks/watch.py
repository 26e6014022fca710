"""Tasks of the blob watcher: poll (the shared marks, then the container), announce, mark.

I/O tasks retry (blob storage and the Prefect API are network services); their inputs are
clients: no caching.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from core.blob_events import event_for
from core.interfaces import BlobRef, DataLake
from core.watch import Mark, WatchState
from tasks.events import send_events


@task(name="prepare-containers", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def prepare_containers(datalake: DataLake, *containers: str) -> None:
    """Create the watched container and the one holding the marks when missing (once a run)."""
    datalake.ensure_containers(*containers)


@task(name="poll-container", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def poll_container(
    state: WatchState, datalake: DataLake, container: str, prefix: str
) -> tuple[dict[str, Mark], list[BlobRef]]:
    """The marks, then every blob in ``container`` under ``prefix``: in that order, so
    forgetting the marks of departed blobs is safe (``core.watch.departed``)."""
    marks = state.read()
    return marks, datalake.list(container, prefix)


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


@task(name="find-landing-taker", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def newest_landing_taker(flow_name: str) -> datetime | None:
    """When the newest unfinished run of ``flow_name`` that takes everything waiting in landing
    (no ``data_uri``, or ``drain_landing``) was created; None when there is none. Runs
    scheduled for later (the weekly cron) do not count: they take nothing until then."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
                    )
                ),
                expected_start_time=FlowRunFilterExpectedStartTime.model_validate(
                    {"before_": datetime.now(UTC)}
                ),
            ),
        )
    takers = [
        run.created
        for run in runs
        if run.created is not None
        and (not run.parameters.get("data_uri") or run.parameters.get("drain_landing"))
    ]
    return max(takers, default=None)
