"""The collected container's monitoring records: windows by time, labels joined once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backends.local.memory import InMemoryDataLake
from core.collected_lake import CheckRecord, CollectedLake
from tests.utils.collected import traffic, write_window

T0 = datetime(2026, 12, 2, 9, 50, tzinfo=UTC)


def test_windows_are_found_by_their_start_across_hour_folders() -> None:
    lake = CollectedLake(InMemoryDataLake(), "collected")
    lake.ensure()
    for minutes in (0, 5, 15, 75):  # 09:50, 09:55, 10:05, 11:05
        write_window(
            lake.datalake, "collected", "production", T0 + timedelta(minutes=minutes), traffic(3)
        )
    write_window(lake.datalake, "collected", "qa", T0, traffic(3))
    found = lake.window_blobs("production", T0 + timedelta(minutes=5), T0 + timedelta(minutes=75))
    assert [r.name.rsplit("/", 1)[-1][:16] for r in found] == [
        "20261202T095500Z",
        "20261202T100500Z",
    ]
    assert len(list(lake.lines(found))) == 6


def test_a_label_file_is_pending_until_joined_and_again_when_uploaded_anew() -> None:
    lake = CollectedLake(InMemoryDataLake(), "collected")
    lake.ensure()
    lake.datalake.put("collected", "labels/a.csv", b"request_id,row,target\n")
    (ref,) = lake.unjoined_labels()
    lake.mark_joined(ref, {"landing": "labelled-a.csv"})
    assert lake.unjoined_labels() == []
    lake.datalake.put("collected", "labels/a.csv", b"request_id,row,target\nx,0,1\n")
    assert [r.name for r in lake.unjoined_labels()] == ["labels/a.csv"]


def test_latest_check_and_history_per_environment() -> None:
    lake = CollectedLake(InMemoryDataLake(), "collected")
    lake.ensure()
    for i, env in enumerate(["production", "qa", "production"]):
        record = CheckRecord(f"t{i}", env, "s", "e", i, i == 2, ["bmi"] * (i == 2), None, None)
        lake.record_check(record, f"2026120{i}")
    latest = lake.latest_check()
    assert latest is not None and latest.checked_at == "t2" and latest.drifted
    assert [r.checked_at for r in lake.history("production", 5)] == ["t0", "t2"]
    assert [r.checked_at for r in lake.history("production", 1)] == ["t2"]
