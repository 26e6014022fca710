"""Files that crash their runs: attempts counted in the lake, then the dead-letter container."""

from __future__ import annotations

import json

import pytest

from backends.local.memory import InMemoryDataLake
from core import dead_letter as dl
from core.lake import MAX_BLOB_NAME, Lake

LANDING = "landing"


@pytest.fixture
def lake() -> Lake:
    lake = Lake(InMemoryDataLake(), LANDING, "curated", "quarantine", "dead-letter")
    lake.ensure()
    return lake


def test_attempts_count_per_version_and_survive_a_new_lake_object(lake: Lake) -> None:
    ref = lake.datalake.put(LANDING, "poison.csv", b"x")
    assert dl.begin(lake, ref).count == 1
    assert dl.fail(lake, ref, "MemoryError: boom").errors[-1].endswith("MemoryError: boom")
    # A restarted process builds a new Lake over the same storage: the count is still there.
    again = Lake(lake.datalake, LANDING, "curated", "quarantine", "dead-letter")
    attempts = dl.begin(again, ref)
    assert attempts.count == 2 and len(attempts.errors) == 1

    reuploaded = lake.datalake.put(LANDING, "poison.csv", b"y")  # a new version starts at 1
    assert dl.begin(lake, reuploaded).count == 1


def test_clear_forgets_the_attempts(lake: Lake) -> None:
    ref = lake.datalake.put(LANDING, "a.csv", b"x")
    dl.begin(lake, ref)
    dl.clear(lake, ref)
    dl.clear(lake, ref)  # twice: harmless
    assert dl.begin(lake, ref).count == 1


def test_dead_letter_moves_the_file_with_its_errors(lake: Lake) -> None:
    name = "p" * 1000 + ".csv"  # no room for the prefix: shortened, never a failure
    ref = lake.datalake.put(LANDING, name, b"poison")
    for _ in range(3):
        dl.begin(lake, ref)
        attempts = dl.fail(lake, ref, "MemoryError: too big")

    moved = dl.dead_letter(lake, ref, attempts)

    assert moved.container == "dead-letter" and moved.name.startswith(dl.FILES_PREFIX)
    assert len(moved.name) + len(dl.ERROR_SUFFIX) <= MAX_BLOB_NAME
    assert lake.datalake.get("dead-letter", moved.name)[0] == b"poison"
    error = json.loads(lake.datalake.get("dead-letter", moved.name + dl.ERROR_SUFFIX)[0])
    assert error["attempts"] == 3 and error["source"] == ref.uri
    assert error["reason"].startswith("3 attempt(s) failed; last: ")
    assert "MemoryError: too big" in error["reason"]
    assert lake.landed() == []
    assert [r.name for r in lake.datalake.list("dead-letter", dl.ATTEMPTS_PREFIX)] == []


def test_a_run_killed_outright_still_counts(lake: Lake) -> None:
    """Out of memory kills the process: no error is recorded, but the attempt is."""
    ref = lake.datalake.put(LANDING, "huge.csv", b"x")
    for _ in range(3):
        dl.begin(lake, ref)  # each run died after this
    attempts = dl.begin(lake, ref)
    assert attempts.count == 4 and attempts.errors == ()
    assert dl.reason(attempts) == "4 attempt(s) failed; last: the run stopped without an error"


def test_a_lost_race_is_withdrawn_and_leftovers_are_pruned(lake: Lake) -> None:
    ref = lake.datalake.put(LANDING, "a.csv", b"x")
    dl.begin(lake, ref)
    assert not dl.withdraw(lake, ref)  # this very version still waits: its own failure
    assert dl.begin(lake, ref).count == 2
    lake.datalake.put(LANDING, "a.csv", b"y")  # uploaded again meanwhile: a lost race
    assert dl.withdraw(lake, ref)
    assert dl.begin(lake, ref).count == 2  # 2 - 1 + 1

    gone = lake.datalake.put(LANDING, "gone.csv", b"x")
    dl.begin(lake, gone)
    lake.datalake.delete(LANDING, "gone.csv")  # taken by another run meanwhile
    assert dl.prune(lake) == ["gone.csv"]
    names = [r.name for r in lake.datalake.list("dead-letter", dl.ATTEMPTS_PREFIX)]
    assert len(names) == 1  # a.csv's count stays: it is still waiting
