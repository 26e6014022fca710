"""The blob watcher on a real Azurite and a real Prefect server: each new or overwritten blob is
announced (the events are read back from the server), nothing twice without a reason, nothing
lost to a concurrent watcher or a crash between announcing and marking."""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.states import Completed, Pending

from backends import get_backends
from core.blob_events import BLOB_CREATED
from core.interfaces import DataLake
from core.results import WatchReport
from core.settings import Settings
from core.watch import WatchState
from flows.blob_watcher import blob_watcher
from flows.retraining import retraining
from tasks.watch import announce_blobs

pytestmark = pytest.mark.integration


def lake_of(settings: Settings) -> DataLake:
    datalake = get_backends(settings).datalake
    datalake.ensure_containers(settings.landing_container, settings.curated_container)
    return datalake


def upload(
    datalake: DataLake, settings: Settings, *names: str, data: bytes = b"a,b\n1,2\n"
) -> None:
    for name in names:
        datalake.put(settings.landing_container, name, data)


def events_of(datalake: DataLake, container: str) -> list[Event]:
    """Every blob-created event of ``container`` stored by the server so far."""
    query = EventFilter(
        event=EventNameFilter(name=[BLOB_CREATED]),
        resource=EventResourceFilter(id_prefix=[datalake.uri(container, "")]),
    )
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=query, limit=50)  # the server allows 50 at most
        events: list[Event] = list(page.events)
        while page.next_page:
            page = client.read_events_page(str(page.next_page))
            events += page.events
    return events


def wait_for_events(
    datalake: DataLake, container: str, expected: dict[str, int], timeout: float = 30.0
) -> list[Event]:
    """Poll until the events per blob name are exactly ``expected`` (ingestion is async)."""
    deadline = time.monotonic() + timeout
    while True:
        events = events_of(datalake, container)
        counts = Counter(e.resource["prefect.resource.name"] for e in events)
        if counts == Counter(expected) or time.monotonic() > deadline:
            assert counts == Counter(expected)
            return events
        time.sleep(0.5)


def test_new_blobs_are_announced_once_and_again_when_overwritten(settings: Settings) -> None:
    datalake = lake_of(settings)
    landing = settings.landing_container
    upload(datalake, settings, "a.csv", "b.csv", "dir/c.csv")

    first = blob_watcher()
    assert sorted(first.announced) == ["a.csv", "b.csv", "dir/c.csv"]
    assert first.listed == 3 and first.container == landing

    assert blob_watcher().announced == []  # nothing new

    upload(datalake, settings, "b.csv", data=b"a,b\n3,4\n")  # overwritten: a new etag
    assert blob_watcher().announced == ["b.csv"]

    events = wait_for_events(datalake, landing, {"a.csv": 1, "b.csv": 2, "dir/c.csv": 1})
    refs = {r.name: r for r in datalake.list(landing)}
    newest = max((e for e in events if e.resource.name == "b.csv"), key=lambda e: e.occurred)
    assert newest.payload["eTag"] == refs["b.csv"].etag
    for event in events:
        assert_event_grid_shape(event, settings)


def assert_event_grid_shape(event: Event, settings: Settings) -> None:
    name = event.resource["prefect.resource.name"]
    url = event.resource.id
    account = "devstoreaccount1"
    assert (
        url
        == f"http://127.0.0.1:{settings.azurite_port}/{account}/{settings.landing_container}/{name}"
    )
    assert event.event == "azure.storage.blob.created"
    assert event.resource["azure.storage.container"] == settings.landing_container
    assert event.resource["azure.storage.account"] == account
    roles = {r.role: r.id for r in event.related}
    assert roles["container"] == f"azure.storage.container.{account}.{settings.landing_container}"
    assert roles["account"] == f"azure.storage.account.{account}"
    assert roles["flow-run"].startswith("prefect.flow-run.")  # which watcher run announced it
    payload: dict[str, Any] = event.payload
    assert payload["api"] == "PutBlob" and payload["blobType"] == "BlockBlob"
    assert payload["url"] == url and payload["name"] == name
    assert payload["container"] == settings.landing_container
    assert payload["contentLength"] == 8
    assert payload["eTag"].startswith('"0x')
    # When it landed (the blob's Last-Modified): the pipeline breakdown's start.
    refs = {r.name: r for r in get_backends(settings).datalake.list(settings.landing_container)}
    if name in refs and refs[name].etag == payload["eTag"]:
        assert datetime.fromisoformat(payload["lastModified"]) == refs[name].last_modified


def test_departed_blobs_are_forgotten(settings: Settings) -> None:
    datalake = lake_of(settings)
    upload(datalake, settings, "a.csv", "b.csv")
    blob_watcher()
    datalake.delete(settings.landing_container, "a.csv")  # processed: left landing
    summary = blob_watcher()
    assert summary.announced == [] and summary.forgotten == ["a.csv"]
    state = WatchState(datalake, settings.curated_container, settings.landing_container)
    assert list(state.read()) == ["b.csv"]


def test_two_concurrent_watchers_lose_no_blob(settings: Settings) -> None:
    datalake = lake_of(settings)
    names = [f"batch-{i}.csv" for i in range(5)]
    upload(datalake, settings, *names)
    start = threading.Barrier(2)
    summaries: list[WatchReport] = []
    errors: list[BaseException] = []

    def watch() -> None:
        start.wait()
        try:
            summaries.append(blob_watcher())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # Each thread runs in a copy of this context: it holds the test Prefect server's settings.
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(watch,)) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(summaries) == 2
    announced = Counter(name for s in summaries for name in s.announced)
    assert set(announced) == set(names)  # some maybe twice (harmless), none missed

    state = WatchState(datalake, settings.curated_container, settings.landing_container)
    assert sorted(state.read()) == names
    assert blob_watcher().announced == []
    events = wait_for_events(datalake, settings.landing_container, dict(announced))
    assert {e.resource["prefect.resource.name"] for e in events} == set(names)


def test_a_crash_between_announcing_and_marking_announces_again(settings: Settings) -> None:
    datalake = lake_of(settings)
    upload(datalake, settings, "a.csv")
    blob_watcher()
    upload(datalake, settings, "late.csv")
    listing = [r for r in datalake.list(settings.landing_container) if r.name == "late.csv"]

    # The watcher's emit step alone, as if the run died before marking.
    assert len(announce_blobs(listing)) == 1

    assert blob_watcher().announced == ["late.csv"]
    assert blob_watcher().announced == []
    wait_for_events(datalake, settings.landing_container, {"a.csv": 1, "late.csv": 2})


def test_blobs_still_waiting_are_announced_again_after_a_while(settings: Settings) -> None:
    datalake = lake_of(settings)
    upload(datalake, settings, "waiting.csv")
    assert blob_watcher().announced == ["waiting.csv"]
    assert blob_watcher(reannounce_after_seconds=3600).announced == []

    summary = blob_watcher(reannounce_after_seconds=0)  # "a while" has passed
    assert summary.announced == summary.reannounced == ["waiting.csv"]
    wait_for_events(datalake, settings.landing_container, {"waiting.csv": 2})


def test_a_waiting_blob_a_retraining_run_has_in_hand_is_not_announced_again(
    settings: Settings,
) -> None:
    datalake = lake_of(settings)
    upload(datalake, settings, "in-hand.csv")
    assert blob_watcher().announced == ["in-hand.csv"]
    with get_client(sync_client=True) as client:
        # A run triggered after the blob landed (e.g. validating it, or queued): it drains.
        run = client.create_flow_run(
            retraining, parameters={"data_uri": "x", "drain_landing": True}, state=Pending()
        )
        try:
            assert blob_watcher(reannounce_after_seconds=0).announced == []
        finally:
            client.set_flow_run_state(run.id, Completed(), force=True)
    # Finished without taking it: the blob waits for nobody, so it is announced again.
    assert blob_watcher(reannounce_after_seconds=0).reannounced == ["in-hand.csv"]


class LandsDuringTheRun:
    """The real data lake, plus one blob that lands right after the first listing."""

    def __init__(self, datalake: DataLake, settings: Settings) -> None:
        self.datalake, self.settings, self.lists = datalake, settings, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.datalake, name)

    def list(self, container: str, prefix: str = "") -> Any:
        listing = self.datalake.list(container, prefix)
        self.lists += 1
        if self.lists == 1:
            upload(self.datalake, self.settings, "late.csv")
        return listing


def test_a_watching_run_polls_until_its_time_is_up_and_announces_what_lands_meanwhile(
    settings: Settings,
) -> None:
    datalake = lake_of(settings)
    upload(datalake, settings, "early.csv")
    lake = LandsDuringTheRun(datalake, settings)
    report = blob_watcher(watch_seconds=4, poll_seconds=0.5, datalake=lake)
    assert report.announced == ["early.csv", "late.csv"]
    assert lake.lists >= 3  # it kept polling after announcing
    wait_for_events(datalake, settings.landing_container, {"early.csv": 1, "late.csv": 1})
