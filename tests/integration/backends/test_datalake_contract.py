"""The DataLake contract, run against BlobDataLake on a real Azurite and the in-memory fake.

Running both through the same tests keeps the fake (used by unit tests elsewhere) honest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends.blob_datalake import BlobDataLake
from backends.local.memory import InMemoryDataLake
from core.interfaces import BlobRef, ConflictError, DataLake, NotFoundError, TooLargeError

pytestmark = pytest.mark.integration


class Lake:
    """A data lake under test plus the names of its fresh containers."""

    def __init__(self, lake: DataLake, a: str, b: str) -> None:
        self.lake, self.a, self.b = lake, a, b


@pytest.fixture(params=["azurite", "memory"])
def env(request: pytest.FixtureRequest) -> Lake:
    if request.param == "memory":
        memory = InMemoryDataLake()
        memory.ensure_containers("landing", "curated")
        return Lake(memory, "landing", "curated")
    containers = request.getfixturevalue("lake_containers")
    return Lake(request.getfixturevalue("datalake"), containers.landing, containers.curated)


def test_implements_the_protocol(env: Lake) -> None:
    assert isinstance(env.lake, DataLake)


def test_put_get_round_trip_with_metadata(env: Lake) -> None:
    put = env.lake.put(env.a, "2026/new data.csv", b"a,b\n1,2\n", metadata={"source": "test"})

    data, got = env.lake.get(env.a, "2026/new data.csv")

    assert data == b"a,b\n1,2\n"
    assert (got.container, got.name, got.size) == (env.a, "2026/new data.csv", 8)
    assert got.etag == put.etag and got.etag.startswith('"')
    assert got.metadata == put.metadata == {"source": "test"}
    assert got.last_modified is not None and got.last_modified.tzinfo is not None
    assert got.uri == put.uri == env.lake.uri(env.a, "2026/new data.csv")


def test_list_by_prefix_with_the_same_etags(env: Lake) -> None:
    refs = {n: env.lake.put(env.a, n, n.encode(), metadata={"n": n}) for n in ("x/1", "x/2", "y")}

    listed = env.lake.list(env.a, prefix="x/")

    assert [r.name for r in listed] == ["x/1", "x/2"]
    for ref in listed:
        # Listings and reads must agree, or an etag from list() could never match a write.
        assert ref.etag == refs[ref.name].etag
        assert ref.metadata == {"n": ref.name} and ref.size == 3
    assert [r.name for r in env.lake.list(env.a)] == ["x/1", "x/2", "y"]
    assert env.lake.list(env.b) == []


def test_overwrite_changes_the_etag(env: Lake) -> None:
    first = env.lake.put(env.a, "f", b"1")
    second = env.lake.put(env.a, "f", b"2")
    assert first.etag != second.etag
    assert env.lake.get(env.a, "f")[0] == b"2"


def test_if_none_match_writes_only_once(env: Lake) -> None:
    env.lake.put(env.a, "once", b"1", if_none_match=True)
    with pytest.raises(ConflictError):
        env.lake.put(env.a, "once", b"2", if_none_match=True)
    assert env.lake.get(env.a, "once")[0] == b"1"


def test_if_match_detects_a_lost_race(env: Lake) -> None:
    seen = env.lake.put(env.a, "state.json", b"v1")
    env.lake.put(env.a, "state.json", b"v2 by someone else")

    with pytest.raises(ConflictError):
        env.lake.put(env.a, "state.json", b"v2 by me", if_match=seen.etag)

    _, current = env.lake.get(env.a, "state.json")
    updated = env.lake.put(env.a, "state.json", b"v3", if_match=current.etag)
    assert updated.etag != current.etag
    env.lake.delete(env.a, "state.json")
    with pytest.raises(ConflictError):
        env.lake.put(env.a, "state.json", b"v4", if_match=updated.etag)


def test_delete(env: Lake) -> None:
    ref = env.lake.put(env.a, "gone", b"1")
    newer = env.lake.put(env.a, "gone", b"2")
    with pytest.raises(ConflictError):
        env.lake.delete(env.a, "gone", if_match=ref.etag)
    assert env.lake.exists(env.a, "gone")

    env.lake.delete(env.a, "gone", if_match=newer.etag)

    assert not env.lake.exists(env.a, "gone")
    with pytest.raises(NotFoundError):
        env.lake.delete(env.a, "gone")


def test_missing_things_are_not_found(env: Lake) -> None:
    with pytest.raises(NotFoundError):
        env.lake.get(env.a, "missing")
    with pytest.raises(NotFoundError):
        env.lake.get("no-such-container", "x")
    with pytest.raises(NotFoundError):
        env.lake.list("no-such-container")
    with pytest.raises(NotFoundError):
        env.lake.put("no-such-container", "x", b"1")
    assert not env.lake.exists(env.a, "missing")
    assert not env.lake.exists("no-such-container", "x")


def test_copy_keeps_or_replaces_metadata(env: Lake) -> None:
    src = env.lake.put(env.a, "in.csv", b"data", metadata={"k": "v"})

    kept = env.lake.copy(src, env.b, "out/1.csv")
    replaced = env.lake.copy(src, env.b, "out/2.csv", metadata={"reason": "bad"})

    assert (kept.container, kept.name, kept.size, kept.metadata) == (
        env.b,
        "out/1.csv",
        4,
        {"k": "v"},
    )
    assert replaced.metadata == {"reason": "bad"}
    assert env.lake.get(env.b, "out/2.csv")[0] == b"data"
    assert env.lake.get(env.b, "out/2.csv")[1].etag == replaced.etag
    assert env.lake.exists(env.a, "in.csv")  # a copy, not a move


def test_copy_only_the_version_that_was_seen(env: Lake) -> None:
    seen = env.lake.put(env.a, "in.csv", b"v1")
    env.lake.put(env.a, "in.csv", b"v2")
    with pytest.raises(ConflictError):
        env.lake.copy(seen, env.b, "out.csv")
    # Without an etag the current version is copied.
    env.lake.copy(env.lake.ref(seen.uri), env.b, "out.csv")
    assert env.lake.get(env.b, "out.csv")[0] == b"v2"
    with pytest.raises(NotFoundError):
        env.lake.copy(BlobRef(env.a, "missing", ""), env.b, "x")


@pytest.mark.parametrize("name", ["plain.csv", "a/b/c.parquet", "with space & plus+.csv", "é.csv"])
def test_uri_and_ref_round_trip(env: Lake, name: str) -> None:
    put = env.lake.put(env.a, name, b"1")

    ref = env.lake.ref(put.uri)

    assert (ref.container, ref.name, ref.uri) == (env.a, name, put.uri)
    assert env.lake.ref(f"{env.a}/{name}") == ref
    assert env.lake.get(ref.container, ref.name)[0] == b"1"
    with pytest.raises(ValueError):
        env.lake.ref("https://elsewhere.example/" + env.a + "/" + name)


def test_ensure_containers_is_idempotent(env: Lake) -> None:
    env.lake.put(env.a, "keep", b"1")
    env.lake.ensure_containers(env.a, env.b)
    assert env.lake.exists(env.a, "keep")


# ---------------------------------------------------------------------- streaming
def test_download_streams_the_version_read_to_a_file(env: Lake, tmp_path: Path) -> None:
    content = bytes(range(256)) * 5000  # 1.28 MB, several chunks on the Blob lake below
    put = env.lake.put(env.a, "big/data.csv", content, metadata={"k": "v"})

    got = env.lake.download(env.a, "big/data.csv", tmp_path / "copy", etag=put.etag)

    assert (tmp_path / "copy").read_bytes() == content
    assert (got.name, got.etag, got.size) == ("big/data.csv", put.etag, len(content))


def test_download_refuses_unread_what_is_over_the_limit(env: Lake, tmp_path: Path) -> None:
    env.lake.put(env.a, "huge.csv", b"x" * 1001)
    with pytest.raises(TooLargeError):
        env.lake.download(env.a, "huge.csv", tmp_path / "copy", max_bytes=1000)
    assert not (tmp_path / "copy").exists()  # not a byte of it was written
    env.lake.download(env.a, "huge.csv", tmp_path / "copy", max_bytes=1001)
    assert (tmp_path / "copy").stat().st_size == 1001


def test_download_only_the_version_that_was_seen(env: Lake, tmp_path: Path) -> None:
    seen = env.lake.put(env.a, "in.csv", b"v1")
    env.lake.put(env.a, "in.csv", b"v2")
    with pytest.raises(ConflictError):
        env.lake.download(env.a, "in.csv", tmp_path / "copy", etag=seen.etag)
    with pytest.raises(NotFoundError):
        env.lake.download(env.a, "missing.csv", tmp_path / "copy")


def test_upload_streams_a_file_into_a_blob(env: Lake, tmp_path: Path) -> None:
    source = tmp_path / "snapshot.parquet"
    source.write_bytes(b"PAR1" + b"\x01" * 300_000)

    put = env.lake.upload(env.b, "training/data.parquet", source, metadata={"kind": "data"})

    data, got = env.lake.get(env.b, "training/data.parquet")
    assert data == source.read_bytes()
    assert (got.etag, got.size, got.metadata) == (put.etag, put.size, {"kind": "data"})
    # Only if absent: a waiting blob of that name is never overwritten.
    with pytest.raises(ConflictError):
        env.lake.upload(env.b, "training/data.parquet", source, if_none_match=True)
    assert env.lake.upload(env.b, "other.parquet", source, if_none_match=True).size == put.size


def test_blob_download_reads_in_chunks_of_the_configured_size(
    azurite: Any, lake_containers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Blob lake never asks for more than ``chunk_bytes`` at a time (memory stays flat)."""
    from azure.storage.blob import StorageStreamDownloader

    sizes: list[int] = []
    original = StorageStreamDownloader.chunks

    def spy(self: Any) -> Any:
        for chunk in original(self):
            sizes.append(len(chunk))
            yield chunk

    monkeypatch.setattr(StorageStreamDownloader, "chunks", spy)
    lake = BlobDataLake(azurite.connection_string, chunk_bytes=256 * 1024)
    content = b"0123456789abcdef" * 100_000  # 1.6 MB
    lake.put(lake_containers.landing, "chunked.csv", content)

    lake.download(lake_containers.landing, "chunked.csv", tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == content
    assert len(sizes) == 7 and max(sizes) == 256 * 1024  # ceil(1.6 MB / 256 KiB) reads
