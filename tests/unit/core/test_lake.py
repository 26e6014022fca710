"""How files move through the lake (landing -> curated or quarantine), on the in-memory fake.

``InMemoryDataLake`` passes the same contract tests as the Azurite-backed lake, so these run
in milliseconds and still speak for the real thing.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import core.lake as lake_module
from backends.local import memory
from backends.local.memory import InMemoryDataLake
from core.interfaces import BlobRef, ConflictError, NotFoundError, TooLargeError
from core.lake import (
    MANIFEST,
    MAX_BLOB_NAME,
    Lake,
    LocalCopy,
    NotInLandingError,
    fit_name,
    sha256,
)
from training import data as tdata

LANDING, CURATED, QUARANTINE = "landing", "curated", "quarantine"


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return tdata.reference_dataset()


@pytest.fixture
def datalake() -> InMemoryDataLake:
    return InMemoryDataLake()


@pytest.fixture
def lake(datalake: InMemoryDataLake) -> Lake:
    lake = Lake(datalake, LANDING, CURATED, QUARANTINE)
    lake.ensure()
    return lake


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


_scratch: list[Path] = []


@pytest.fixture(autouse=True)
def _local_copies(tmp_path: Path) -> Iterator[None]:
    """Where ``land`` streams landing files, as the flow does (one folder per test)."""
    _scratch.append(tmp_path)
    yield
    _scratch.pop()


def land(lake: Lake, name: str, blob: bytes) -> LocalCopy:
    """Upload ``blob`` to landing and stream it to local disk as the flow does."""
    lake.datalake.put(LANDING, name, blob)
    return lake.download(lake.resolve(f"{LANDING}/{name}"), _scratch[-1])


def merge_file(lake: Lake, name: str, blob: bytes) -> Any:
    return lake.merge(land(lake, name, blob))


def manifest(lake: Lake) -> tuple[bytes, BlobRef]:
    return lake.datalake.get(CURATED, MANIFEST)


def names(lake: Lake, container: str, prefix: str = "") -> list[str]:
    return [r.name for r in lake.datalake.list(container, prefix)]


# ---------------------------------------------------------------------- merge
def test_first_merge_writes_manifest_snapshot_and_archives(
    lake: Lake, reference: pd.DataFrame
) -> None:
    blob = csv(reference.head(60))
    result = merge_file(lake, "batch-a.csv", blob)

    assert result.merged
    assert result.curated == lake.curated_set()
    assert result.curated.rows == 60 and result.curated.sources == (sha256(blob),)
    # The snapshot is a parquet file named after its fingerprint, holding exactly the rows.
    snapshot = lake.datalake.ref(result.curated.data_uri)
    assert snapshot.container == CURATED
    assert snapshot.name == f"training/data-{result.curated.fingerprint[:16]}.parquet"
    frame = pd.read_parquet(io.BytesIO(lake.datalake.get(CURATED, snapshot.name)[0]))
    assert len(frame) == 60 and tdata.fingerprint(frame) == result.curated.fingerprint
    pd.testing.assert_frame_equal(lake.load_curated(result.curated), frame)
    # The manifest records where the rows came from.
    recorded = json.loads(manifest(lake)[0])
    assert recorded["history"][0]["file"] == "batch-a.csv"
    assert recorded["history"][0]["rows"] == 60
    # The landing file is archived as received, and landing is empty.
    archived = lake.datalake.ref(result.archived_uri)
    assert re.fullmatch(
        rf"accepted/\d{{8}}T\d{{6}}Z-{sha256(blob)[:8]}-batch-a\.csv", archived.name
    )
    data, ref = lake.datalake.get(CURATED, archived.name)
    assert data == blob and ref.metadata == {"sha256": sha256(blob), "replay": "false"}
    assert lake.landed() == []


def test_same_content_again_is_a_replay(lake: Lake, reference: pd.DataFrame) -> None:
    blob = csv(reference.head(60))
    first = merge_file(lake, "batch-a.csv", blob)
    before, before_ref = manifest(lake)

    again = merge_file(lake, "batch-a-copy.csv", blob)

    assert not again.merged
    assert again.curated == first.curated
    after, after_ref = manifest(lake)
    assert after == before and after_ref.etag == before_ref.etag  # not even rewritten
    # The replayed file still leaves landing, archived and marked as a replay.
    assert lake.landed() == []
    archived = lake.datalake.ref(again.archived_uri)
    assert archived.name.endswith("-batch-a-copy.csv")
    assert lake.datalake.get(CURATED, archived.name)[1].metadata["replay"] == "true"
    assert len(names(lake, CURATED, "accepted/")) == 2


def test_a_different_file_grows_the_set(lake: Lake, reference: pd.DataFrame) -> None:
    first = merge_file(lake, "batch-a.csv", csv(reference.head(60)))
    second_blob = csv(reference.iloc[60:100])
    second = merge_file(lake, "batch-b.csv", second_blob)

    assert second.merged
    assert second.curated.rows == 100
    assert second.curated.fingerprint != first.curated.fingerprint
    assert second.curated.sources == (*first.curated.sources, sha256(second_blob))
    assert second.curated.data_uri != first.curated.data_uri
    combined = lake.load_curated(second.curated)
    assert tdata.fingerprint(combined) == second.curated.fingerprint
    expected = tdata.to_training_frame(reference.head(100))
    pd.testing.assert_frame_equal(combined, expected)
    # Snapshots are immutable: the first one is still there, as it was.
    assert lake.load_curated(first.curated).shape == (60, expected.shape[1])
    assert [h["file"] for h in json.loads(manifest(lake)[0])["history"]] == [
        "batch-a.csv",
        "batch-b.csv",
    ]


class RacingLake(InMemoryDataLake):
    """Runs ``race`` once, just before the first manifest write: a concurrent merge."""

    def __init__(self) -> None:
        super().__init__()
        self.race: Any = None

    def put(self, container: str, name: str, data: bytes, **kwargs: Any) -> BlobRef:
        if name == MANIFEST and self.race is not None:
            race, self.race = self.race, None
            race()
        return super().put(container, name, data, **kwargs)


@pytest.mark.parametrize("existing", [False, True], ids=["first-manifest", "manifest-update"])
def test_concurrent_manifest_write_conflicts_and_loses_nothing(
    reference: pd.DataFrame, existing: bool
) -> None:
    datalake = RacingLake()
    lake = Lake(datalake, LANDING, CURATED, QUARANTINE)
    lake.ensure()
    if existing:
        merge_file(lake, "base.csv", csv(reference.head(50)))
    base_rows = 50 if existing else 0
    ours, theirs = csv(reference.iloc[100:130]), csv(reference.iloc[200:240])
    copy = land(lake, "ours.csv", ours)
    # The other writer reads the manifest after us and commits first.
    datalake.race = lambda: merge_file(lake, "theirs.csv", theirs)

    with pytest.raises(ConflictError):
        lake.merge(copy)

    # Their rows are committed; our file is still waiting in landing, untouched.
    committed = lake.curated_set()
    assert committed is not None and committed.rows == base_rows + 40
    assert sha256(theirs) in committed.sources and sha256(ours) not in committed.sources
    assert [r.name for r in lake.landed()] == ["ours.csv"]
    # The caller's retry merges it on top of theirs.
    retried = lake.merge(lake.download(lake.resolve(f"{LANDING}/ours.csv"), _scratch[-1]))
    assert retried.merged and retried.curated.rows == base_rows + 70
    assert set(retried.curated.sources) >= {sha256(ours), sha256(theirs)}
    assert len(lake.load_curated(retried.curated)) == base_rows + 70
    assert lake.landed() == []


# ---------------------------------------------------------------------- quarantine
def test_quarantine_keeps_bytes_and_reason_and_empties_landing(lake: Lake) -> None:
    blob = b"age,sex\n\x00\xff not really csv\r\n"
    lake.datalake.put(LANDING, "incoming/bad.csv", blob)
    ref = lake.resolve(f"{LANDING}/incoming/bad.csv")
    reason = {"reason": "2 expectations failed", "report": {"failures": ["s5"]}}

    moved = lake.quarantine(lake.read(ref)[1], reason)

    assert moved.container == QUARANTINE and moved.name.endswith("-bad.csv")
    data, stored = lake.datalake.get(QUARANTINE, moved.name)
    assert data == blob and stored.metadata == {"kind": "quarantined"}
    written, reason_ref = lake.datalake.get(QUARANTINE, f"{moved.name}.reason.json")
    assert json.loads(written) == {"source": ref.uri, **reason}
    assert reason_ref.metadata == {"kind": "reason"}
    assert sorted(names(lake, QUARANTINE)) == [moved.name, f"{moved.name}.reason.json"]
    assert lake.landed() == []


def test_two_files_of_one_name_are_both_quarantined(lake: Lake) -> None:
    # Same base name, same second: neither may overwrite the other.
    moved = []
    for folder in ("a", "b"):
        lake.datalake.put(LANDING, f"{folder}/bad.csv", folder.encode())
        ref = lake.read(lake.resolve(f"{LANDING}/{folder}/bad.csv"))[1]
        moved.append(lake.quarantine(ref, {"reason": folder}))

    assert moved[0].name != moved[1].name
    for folder, ref in zip(("a", "b"), moved, strict=True):
        assert lake.datalake.get(QUARANTINE, ref.name)[0] == folder.encode()
        reason = json.loads(lake.datalake.get(QUARANTINE, f"{ref.name}.reason.json")[0])
        assert reason["reason"] == folder
    assert lake.landed() == []


def test_a_file_uploaded_again_meanwhile_stays_in_landing(lake: Lake) -> None:
    lake.datalake.put(LANDING, "bad.csv", b"old")
    old = lake.read(lake.resolve(f"{LANDING}/bad.csv"))[1]
    new = lake.datalake.put(LANDING, "bad.csv", b"new")  # re-uploaded after we read it

    with pytest.raises(ConflictError):  # never quarantine bytes we did not validate
        lake.quarantine(old, {"reason": "x"})

    assert [(r.name, r.etag) for r in lake.landed()] == [("bad.csv", new.etag)]
    assert names(lake, QUARANTINE) == []  # no reason without its file


# ---------------------------------------------------------------------- landing
class Clock:
    """Stands in for ``datetime`` in the in-memory lake: each ``now()`` is ``step`` later."""

    def __init__(self, step: timedelta) -> None:
        self.step = step
        self.time = datetime(2024, 1, 1, tzinfo=UTC)

    def now(self, tz: Any = None) -> datetime:
        self.time += self.step
        return self.time


def test_landed_is_oldest_first(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "datetime", Clock(timedelta(seconds=1)))
    for name in ("c.csv", "a.csv", "b.csv"):
        lake.datalake.put(LANDING, name, b"x")
    lake.datalake.put(CURATED, "elsewhere.csv", b"x")

    assert [r.name for r in lake.landed()] == ["c.csv", "a.csv", "b.csv"]


def test_landed_ties_go_by_name(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "datetime", Clock(timedelta(0)))
    for name in ("c.csv", "a.csv", "b.csv"):
        lake.datalake.put(LANDING, name, b"x")

    assert [r.name for r in lake.landed()] == ["a.csv", "b.csv", "c.csv"]


def test_resolve_accepts_uri_and_path(lake: Lake) -> None:
    stored = lake.datalake.put(LANDING, "dir/file.csv", b"x")
    assert lake.resolve(stored.uri).name == "dir/file.csv"
    assert lake.resolve(f"{LANDING}/dir/file.csv").uri == stored.uri


def test_resolve_of_a_missing_blob_names_it(lake: Lake) -> None:
    with pytest.raises(NotFoundError, match="landing/nope.csv"):
        lake.resolve("landing/nope.csv")
    with pytest.raises(NotFoundError, match="landing/gone.csv"):
        lake.resolve(lake.datalake.uri(LANDING, "gone.csv"))


def test_no_curated_set_before_the_first_merge(lake: Lake) -> None:
    assert lake.curated_set() is None
    assert names(lake, CURATED) == []


# ---------------------------------------------------------------------- issue 8: nothing lost
def test_resolve_refuses_a_blob_outside_landing(lake: Lake, reference: pd.DataFrame) -> None:
    """``retrain --data curated/training/manifest.json`` must not take (and delete) it."""
    merge_file(lake, "a.csv", csv(reference.head(60)))
    for uri in (f"{CURATED}/{MANIFEST}", lake.datalake.uri(CURATED, MANIFEST)):
        with pytest.raises(NotInLandingError, match="not in the landing container 'landing'"):
            lake.resolve(uri)
    assert lake.datalake.exists(CURATED, MANIFEST)


def test_resolve_knows_the_size_and_version_before_reading(lake: Lake) -> None:
    stored = lake.datalake.put(LANDING, "a.csv", b"12345")
    resolved = lake.resolve(f"{LANDING}/a.csv")
    assert (resolved.size, resolved.etag) == (5, stored.etag)


def test_a_file_over_the_size_limit_is_refused_unread(datalake: InMemoryDataLake) -> None:
    lake = Lake(datalake, LANDING, CURATED, QUARANTINE, max_bytes=4)
    lake.ensure()
    ref = lake.datalake.put(LANDING, "big.csv", b"12345")
    assert lake.too_large(ref) == (
        "big.csv: 5 bytes, over the limit of 4 (MLOPS_MAX_FILE_BYTES): not read"
    )
    with pytest.raises(ValueError, match="not read"):
        lake.read(ref)
    assert lake.too_large(lake.datalake.put(LANDING, "ok.csv", b"1234")) is None


class CountingLake(InMemoryDataLake):
    """Records every blob whose content is read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[str] = []

    def get(self, container: str, name: str) -> tuple[bytes, BlobRef]:
        self.read.append(name)
        return super().get(container, name)

    def download(self, container: str, name: str, dest: Path, **kw: Any) -> BlobRef:
        self.read.append(name)
        return super().download(container, name, dest, **kw)


def test_a_download_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    datalake = CountingLake()
    lake = Lake(datalake, LANDING, CURATED, QUARANTINE, max_bytes=4)
    lake.ensure()
    listed = datalake.put(LANDING, "big.csv", b"12345")

    with pytest.raises(TooLargeError, match="not read"):
        lake.download(listed, tmp_path)

    assert datalake.read == [] and list(tmp_path.iterdir()) == []
    # Listed small, grown since: the lake refuses it too (the download is pinned to the
    # listed version, and its size is checked against the limit before reading).
    small = datalake.put(LANDING, "grew.csv", b"1234")
    datalake.put(LANDING, "grew.csv", b"123456789")
    with pytest.raises((TooLargeError, ConflictError)):
        lake.download(small, tmp_path)


def test_a_download_streams_the_listed_version_with_its_sha256(lake: Lake, tmp_path: Path) -> None:
    listed = lake.datalake.put(LANDING, "in/a b.csv", b"age\n1\n")

    copy = lake.download(lake.resolve(f"{LANDING}/in/a b.csv"), tmp_path)

    assert copy.path.read_bytes() == b"age\n1\n" and copy.path.parent == tmp_path
    assert copy.path.name.endswith("a_b.csv")  # the extension kept: readers use it
    assert copy.ref.etag == listed.etag and copy.sha256 == sha256(b"age\n1\n")


def test_a_csv_curated_set_is_read_and_converted_on_the_next_merge(
    lake: Lake, reference: pd.DataFrame
) -> None:
    """Sets written before the Parquet snapshots: read as they are, and the next merge
    writes Parquet holding every old row; the fingerprint of the same rows is unchanged."""
    old = reference.head(80)
    fingerprint = tdata.fingerprint(tdata.to_training_frame(old))
    data = lake.datalake.put(CURATED, "training/data-old.csv", csv(old))
    lake.datalake.put(
        CURATED,
        MANIFEST,
        json.dumps(
            {"data_uri": data.uri, "fingerprint": fingerprint, "rows": 80, "sources": ["x"]}
        ).encode(),
    )
    current = lake.curated_set()
    assert current is not None
    assert tdata.fingerprint(lake.load_curated(current)) == fingerprint

    merged = merge_file(lake, "new.csv", csv(reference.iloc[100:160]))

    assert merged.curated.rows == 140 and merged.curated.data_uri.endswith(".parquet")
    combined = pd.concat([old, reference.iloc[100:160]], ignore_index=True)
    assert merged.curated.fingerprint == tdata.fingerprint(combined)
    assert tdata.fingerprint(lake.load_curated(merged.curated)) == merged.curated.fingerprint


def test_holdout_is_the_training_jobs_holdout(lake: Lake, reference: pd.DataFrame) -> None:
    merged = merge_file(lake, "all.csv", csv(reference))

    holdout = lake.holdout(merged.curated, 0.2, seed=42)

    _, expected = tdata.split(reference, 0.2, seed=42)
    pd.testing.assert_frame_equal(holdout, expected.reset_index(drop=True))


def test_names_too_long_for_a_prefix_are_shortened_deterministically() -> None:
    name = "x" * 1000 + ".csv"
    fitted = fit_name("20240101T000000Z-abcdef12-", name)
    assert fitted == fit_name("20240101T000000Z-abcdef12-", name)  # a retry finds it again
    assert len(fitted) + len(".reason.json") == MAX_BLOB_NAME
    assert fitted.endswith(f"~{sha256(name.encode())[:16]}.csv")
    assert fit_name("p-", "short.csv") == "p-short.csv"
    assert fit_name("p-", "y" * 1000 + ".csv") != fitted  # another name, another hash


def test_a_1000_character_name_is_quarantined_with_its_reason(lake: Lake) -> None:
    name = "n" * 1000 + ".csv"
    lake.datalake.put(LANDING, name, b"bad")
    moved = lake.quarantine(lake.resolve(f"{LANDING}/{name}"), {"reason": "bad"})
    assert len(moved.name) <= MAX_BLOB_NAME - len(".reason.json")
    reason = json.loads(lake.datalake.get(QUARANTINE, f"{moved.name}.reason.json")[0])
    assert reason["reason"] == "bad" and reason["source"].endswith(".csv")
    assert lake.landed() == []


def test_a_quarantine_stopped_half_way_is_finished_by_the_retry(
    datalake: InMemoryDataLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy's name comes from the blob version, not the clock: the retry overwrites it
    and writes the reason, instead of leaving one more copy without a reason each time."""
    lake = Lake(datalake, LANDING, CURATED, QUARANTINE)
    lake.ensure()
    lake.datalake.put(LANDING, "bad.csv", b"bad")
    ref = lake.resolve(f"{LANDING}/bad.csv")
    real_put = datalake.put
    monkeypatch.setattr(lake_module, "datetime", Clock(timedelta(seconds=1)))  # time passes

    def reason_write_fails(container: str, name: str, data: bytes, **kw: Any) -> BlobRef:
        if name.endswith(".reason.json"):
            raise ConflictError("injected: the reason write failed")
        return real_put(container, name, data, **kw)

    monkeypatch.setattr(datalake, "put", reason_write_fails)
    with pytest.raises(ConflictError, match="injected"):
        lake.quarantine(ref, {"reason": "x"})
    monkeypatch.setattr(datalake, "put", real_put)
    moved = lake.quarantine(ref, {"reason": "x"})  # the rerun, same version

    assert sorted(names(lake, QUARANTINE)) == [moved.name, f"{moved.name}.reason.json"]
    assert lake.landed() == []
