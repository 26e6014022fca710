"""The blob watcher's logic: diffing listings against marks, the shared state, the event shape."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backends.local.memory import InMemoryDataLake
from core.blob_events import (
    BLOB_CREATED,
    account_of,
    blob_created_event,
    event_for,
    from_event_grid,
)
from core.interfaces import BlobRef
from core.watch import Mark, WatchState, departed, merge_marks, next_poll_in, pending

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def ref(name: str, etag: str, minutes: int = 0) -> BlobRef:
    return BlobRef(
        container="landing",
        name=name,
        uri=f"http://127.0.0.1:10000/devstoreaccount1/landing/{name}",
        etag=etag,
        size=10,
        last_modified=T0 + timedelta(minutes=minutes),
    )


def marked(etag: str, minutes: int = 0) -> Mark:
    return Mark(etag, T0 + timedelta(minutes=minutes))


# --------------------------------------------------------------------------- diffing
def test_pending_lists_new_and_overwritten_blobs_oldest_first() -> None:
    listing = [ref("c.csv", '"3"', 2), ref("a.csv", '"1"', 5), ref("b.csv", '"2b"', 1)]
    marks = {"a.csv": marked('"1"'), "b.csv": marked('"2"')}
    assert [r.name for r in pending(listing, marks, T0)] == ["b.csv", "c.csv"]


def test_pending_is_empty_when_everything_was_announced() -> None:
    listing = [ref("a.csv", '"1"'), ref("b.csv", '"2"')]
    marks = {"a.csv": marked('"1"'), "b.csv": marked('"2"'), "gone.csv": marked('"9"')}
    assert pending(listing, marks, T0 + timedelta(days=9)) == []


def test_blobs_still_waiting_long_after_their_announcement_are_due_again() -> None:
    listing = [ref("old.csv", '"1"'), ref("recent.csv", '"2"')]
    marks = {"old.csv": marked('"1"', 0), "recent.csv": marked('"2"', 8)}
    now, again = T0 + timedelta(minutes=10), timedelta(minutes=10)
    assert [r.name for r in pending(listing, marks, now, reannounce_after=again)] == ["old.csv"]
    assert pending(listing, marks, now, reannounce_after=None) == []


def test_a_waiting_blob_is_not_due_again_while_a_run_created_after_it_landed_will_take_it() -> None:
    listing = [ref("taken.csv", '"1"', 0), ref("absorbed.csv", '"2"', 5)]
    marks = {"taken.csv": marked('"1"', 0), "absorbed.csv": marked('"2"', 5)}
    now, again = T0 + timedelta(minutes=20), timedelta(minutes=10)
    # A run created at minute 3 listed landing after taken.csv landed, before absorbed.csv.
    taker = T0 + timedelta(minutes=3)
    due = pending(listing, marks, now, reannounce_after=again, taker_since=taker)
    assert [r.name for r in due] == ["absorbed.csv"]
    # New versions are announced whatever runs there are.
    fresh = [ref("taken.csv", '"1b"', 1)]
    assert [r.name for r in pending(fresh, marks, now, again, taker_since=taker)] == ["taken.csv"]


def test_departed_marks_are_those_not_listed_under_the_prefix() -> None:
    marks = {"a.csv": marked('"1"'), "gone.csv": marked('"9"'), "other/x.csv": marked('"7"')}
    assert departed(marks, [ref("a.csv", '"1"')]) == {"gone.csv": '"9"', "other/x.csv": '"7"'}
    # With a prefix, blobs outside it were not listed: their marks are not departed.
    assert departed(marks, [], prefix="other/") == {"other/x.csv": '"7"'}


def test_merge_keeps_concurrent_marks_and_forgets_only_unrenewed_ones() -> None:
    current = {"a": marked("1"), "b": marked("2"), "c": marked("3-renewed"), "x": marked("5")}
    merged = merge_marks(current, {"new": marked("4")}, forget={"b": "2", "c": "3"})
    assert merged == {
        "a": marked("1"),
        "c": marked("3-renewed"),
        "x": marked("5"),
        "new": marked("4"),
    }


# --------------------------------------------------------------------------- shared state
@pytest.fixture
def lake() -> InMemoryDataLake:
    lake = InMemoryDataLake()
    lake.ensure_containers("curated")
    return lake


def test_state_starts_empty_and_records_marks(lake: InMemoryDataLake) -> None:
    state = WatchState(lake, "curated", "landing")
    assert state.read() == {}
    assert state.record({"a.csv": marked('"1"')}, {}) == {"a.csv": marked('"1"')}
    assert state.record({"b.csv": marked('"2"', 3)}, {"a.csv": '"1"'}) == {
        "b.csv": marked('"2"', 3)
    }
    assert WatchState(lake, "curated", "landing").read() == {"b.csv": marked('"2"', 3)}
    stored = json.loads(lake.get("curated", "watcher/landing.json")[0])
    assert stored["watched"] == "landing"
    assert stored["announced"] == {"b.csv": {"etag": '"2"', "at": "2026-11-30T12:03:00+00:00"}}


def test_nothing_is_written_when_nothing_changes(lake: InMemoryDataLake) -> None:
    state = WatchState(lake, "curated", "landing")
    state.record({"a.csv": marked('"1"')}, {})
    before = lake.get("curated", "watcher/landing.json")[1].etag
    state.record({}, {"gone.csv": '"9"'})
    assert lake.get("curated", "watcher/landing.json")[1].etag == before


def test_state_is_per_watched_container(lake: InMemoryDataLake) -> None:
    WatchState(lake, "curated", "landing").record({"a.csv": marked('"1"')}, {})
    assert WatchState(lake, "curated", "other").read() == {}


def test_concurrent_recorders_lose_no_mark(lake: InMemoryDataLake) -> None:
    state = WatchState(lake, "curated", "landing")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def mark(i: int) -> None:
        start.wait()
        try:
            for j in range(5):
                state.record({f"w{i}-{j}.csv": marked(f'"{i}.{j}"')}, {})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=mark, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = {f"w{i}-{j}.csv": marked(f'"{i}.{j}"') for i in range(8) for j in range(5)}
    assert state.read() == expected


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"announced": {"a.csv": "old format"}}', b"[]"]
)
def test_unreadable_state_is_replaced_not_fatal(lake: InMemoryDataLake, content: bytes) -> None:
    lake.put("curated", "watcher/landing.json", content)
    state = WatchState(lake, "curated", "landing")
    assert state.read() == {}
    assert state.record({"a.csv": marked('"1"')}, {}) == {"a.csv": marked('"1"')}
    assert state.read() == {"a.csv": marked('"1"')}


# --------------------------------------------------------------------------- events
@pytest.mark.parametrize(
    ("url", "account"),
    [
        ("https://mlopsdata.blob.core.windows.net/landing/x.csv", "mlopsdata"),
        ("http://127.0.0.1:10000/devstoreaccount1/landing/x.csv", "devstoreaccount1"),
        ("memory://datalake/landing/dir/x.csv", "datalake"),
    ],
)
def test_account_of(url: str, account: str) -> None:
    assert account_of(url, "landing") == account


def test_event_for_a_listed_blob_has_the_event_grid_shape() -> None:
    spec = event_for(ref("batch a.csv", '"0x8D"'))
    url = "http://127.0.0.1:10000/devstoreaccount1/landing/batch a.csv"
    assert spec.event == BLOB_CREATED == "azure.storage.blob.created"
    assert spec.resource == {
        "prefect.resource.id": url,
        "prefect.resource.name": "batch a.csv",
        "azure.storage.container": "landing",
        "azure.storage.account": "devstoreaccount1",
    }
    assert spec.related == [
        {
            "prefect.resource.id": "azure.storage.container.devstoreaccount1.landing",
            "prefect.resource.role": "container",
        },
        {
            "prefect.resource.id": "azure.storage.account.devstoreaccount1",
            "prefect.resource.role": "account",
        },
    ]
    assert spec.payload == {
        "api": "PutBlob",
        "url": url,
        "eTag": '"0x8D"',
        "contentLength": 10,
        "blobType": "BlockBlob",
        "container": "landing",
        "name": "batch a.csv",
        "lastModified": T0.isoformat(),
    }


EVENT_GRID_DATA: dict[str, Any] = {
    "api": "PutBlockList",
    "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
    "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
    "eTag": '"0x8D4BCC2E4835CD0"',
    "contentType": "text/csv",
    "contentLength": 524288,
    "blobType": "BlockBlob",
    "url": "https://mlopsdata.blob.core.windows.net/landing/2026/batch.csv",
    "sequencer": "00000000000004420000000000028963",
}
SUBJECT = "/blobServices/default/containers/landing/blobs/2026/batch.csv"
TOPIC = (
    "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/mlopsdata"
)


@pytest.mark.parametrize(
    "delivery",
    [
        {  # Event Grid schema
            "topic": TOPIC,
            "subject": SUBJECT,
            "eventType": "Microsoft.Storage.BlobCreated",
            "id": "831e1650-001e-001b-66ab-eeb76e069631",
            "data": EVENT_GRID_DATA,
        },
        {  # CloudEvents 1.0 schema
            "source": TOPIC,
            "subject": SUBJECT,
            "type": "Microsoft.Storage.BlobCreated",
            "specversion": "1.0",
            "data": EVENT_GRID_DATA,
        },
    ],
)
def test_a_relayed_event_grid_delivery_gives_the_same_event(delivery: dict[str, Any]) -> None:
    spec = from_event_grid(delivery)
    expected = blob_created_event(
        url=EVENT_GRID_DATA["url"],
        account="mlopsdata",
        container="landing",
        name="2026/batch.csv",
        etag='"0x8D4BCC2E4835CD0"',
        size=524288,
        api="PutBlockList",
    )
    assert spec.event == expected.event
    assert spec.resource == expected.resource and spec.related == expected.related
    assert spec.payload == {**EVENT_GRID_DATA, **expected.payload}


def test_other_event_grid_events_are_refused() -> None:
    with pytest.raises(ValueError, match="BlobCreated"):
        from_event_grid({"eventType": "Microsoft.Storage.BlobDeleted", "data": {}})
    with pytest.raises(ValueError, match="names no blob"):
        from_event_grid(
            {"eventType": "Microsoft.Storage.BlobCreated", "subject": "/x", "data": {"url": ""}}
        )


@pytest.mark.parametrize(
    ("last_poll", "now", "expected"),
    [
        (0.0, 0.2, 4.8),  # a quick poll: wait out the rest of the interval
        (0.0, 6.0, 0.0),  # a poll longer than the interval: the next one right away
        (60.0, 60.1, 4.9),  # the last poll that still starts by the deadline (65)
        (61.0, 61.1, None),  # the next would start after the deadline: the run ends
    ],
)
def test_polls_start_one_interval_apart_until_the_deadline(
    last_poll: float, now: float, expected: float | None
) -> None:
    pause = next_poll_in(last_poll, interval=5.0, deadline=65.0, now=now)
    assert pause == (None if expected is None else pytest.approx(expected))


def test_a_single_pass_polls_once() -> None:
    assert next_poll_in(last_poll=0.0, interval=5.0, deadline=0.0, now=0.1) is None
