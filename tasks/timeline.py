"""The pipeline's recorded times, read back from the Prefect API (``core.breakdown`` sums them).

What the server keeps: each flow run's creation and state changes (``Pending`` when a worker
took it, ``Running`` when its process started the flow), each task run's start and end, and
the ``azure.storage.blob.created`` event that announced the file (its payload carries the
blob's ``lastModified`` when the local watcher sent it). Task runs are recorded from events,
a moment after they happen, so a reader that needs the newest ones waits for them.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)

from core.breakdown import Breakdown, PipelineTimes, RunTimes, Span, breakdown
from core.events import BLOB_CREATED

# A release later than this after the registration was not started by it (e.g. a person
# released an old version): its breakdown would not describe one pass of the pipeline.
MAX_TRIGGER_DELAY = timedelta(minutes=10)


def run_times(client: SyncPrefectClient, flow_run_id: UUID | str) -> RunTimes:
    """A flow run's recorded times and its task runs (each named by its task)."""
    run = client.read_flow_run(UUID(str(flow_run_id)))
    states = client.read_flow_run_states(run.id)

    def first(kind: str) -> datetime | None:
        return min((s.timestamp for s in states if s.type.value == kind), default=None)

    task_runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
    )
    spans = tuple(
        Span(tr.name.rsplit("-", 1)[0], tr.start_time, tr.end_time)
        for tr in task_runs
        if tr.start_time is not None and tr.end_time is not None
    )
    assert run.created is not None
    return RunTimes(
        flow=run.name,
        created=run.created,
        pending=first("PENDING"),
        running=first("RUNNING"),
        ended=run.end_time,
        tasks=spans,
    )


def announcement(
    client: SyncPrefectClient, blob_url: str, before: datetime
) -> tuple[datetime, datetime | None] | None:
    """(announced, landed) of the last ``azure.storage.blob.created`` event for the blob
    before ``before``; landed is None when the event does not say."""
    page = client.read_events(
        filter=EventFilter(
            event=EventNameFilter(name=[BLOB_CREATED]),
            resource=EventResourceFilter(id=[blob_url]),
            occurred=EventOccurredFilter.model_validate(
                {"since": before - timedelta(hours=1), "until": before}
            ),
        ),
        limit=50,
    )
    if not page.events:
        return None
    event = max(page.events, key=lambda e: e.occurred)
    landed = event.payload.get("lastModified")
    return event.occurred, datetime.fromisoformat(landed) if landed else None


def pipeline_times(
    client: SyncPrefectClient,
    release_run: UUID | str,
    retraining_run: UUID | str,
    serving: datetime | None = None,
    landed: datetime | None = None,
    wait_seconds: float = 10.0,
) -> PipelineTimes:
    """The recorded times of one pass, waiting up to ``wait_seconds`` for the release's
    production deploy to be recorded (task runs are written a moment after they end)."""
    deadline = time.monotonic() + wait_seconds
    release = run_times(client, release_run)
    # No task run recorded at all: a server that records none (no services): do not wait.
    while (
        release.tasks
        and sum(s.task == "deploy" for s in release.tasks) < 2
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
        release = run_times(client, release_run)
    retraining = run_times(client, retraining_run)
    data_uri = client.read_flow_run(UUID(str(retraining_run))).parameters.get("data_uri")
    found = announcement(client, data_uri, retraining.created) if data_uri else None
    announced, event_landed = found if found else (None, None)
    return PipelineTimes(
        retraining=retraining,
        release=release,
        landed=landed or event_landed,
        announced=announced,
        serving=serving,
    )


@task(name="publish-pipeline-breakdown", cache_policy=NONE)
def publish_pipeline_breakdown(
    release_run: UUID | str, retraining_run: str | None
) -> Breakdown | None:
    """Publish the landing-to-production breakdown of this release as a markdown artifact;
    None (nothing published) when the release did not follow a retraining run's registration."""
    logger = get_run_logger()
    if not retraining_run:
        logger.info("no retraining run recorded for this version: no pipeline breakdown")
        return None
    with get_client(sync_client=True) as client:
        times = pipeline_times(client, release_run, retraining_run)
    if times.release.created - (times.retraining.ended or times.release.created) > (
        MAX_TRIGGER_DELAY
    ):
        logger.info("this release did not follow its registration: no pipeline breakdown")
        return None
    try:
        result = breakdown(times)
    except ValueError as exc:  # e.g. the production deploy is not recorded
        logger.info("no pipeline breakdown: %s", exc)
        return None
    create_markdown_artifact(
        key="pipeline-breakdown",
        markdown=_markdown(times, result),
        description=f"landing to production: {result.total:.1f} s, "
        f"orchestration {result.orchestration_share:.0%}",
    )
    logger.info("landing to production %.1f s: %s", result.total, "; ".join(result.verdict()))
    return result


def _markdown(times: PipelineTimes, result: Breakdown) -> str:
    start: Any = times.landed or times.announced or times.retraining.created
    head = [
        "# Landing to production, per stage",
        "",
        f"From {'the file landing' if times.landed else 'the announcement'} "
        f"({start.isoformat()}) to production serving the new version (the end of the "
        "production deploy, which switched it), from the flow runs' own records.",
        "",
    ]
    return "\n".join(head) + result.to_markdown()
