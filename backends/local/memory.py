"""An in-memory ``DataLake`` for unit tests: the same contract as ``BlobDataLake``, no I/O.

The integration tests run one set of contract tests against both, so this fake cannot
drift from the real thing unnoticed.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from core.interfaces import BackendError, BlobRef, ConflictError, NotFoundError, TooLargeError

ENDPOINT = "memory://datalake"
MAX_NAME = 1024  # Azure Blob Storage's limit on a blob name, in characters
CHUNK_BYTES = 4 * 1024 * 1024  # the Blob SDK's default download chunk


class InMemoryDataLake:
    """``DataLake`` kept in a dict of containers; URIs look like ``memory://datalake/c/n``."""

    def __init__(self) -> None:
        self._containers: dict[str, dict[str, tuple[bytes, BlobRef]]] = {}
        self._etags = count(1)
        # Flows may call it from several task threads; writes must stay conditional.
        self._lock = threading.Lock()
        self.endpoint = ENDPOINT

    def ensure_containers(self, *names: str) -> None:
        """Create the containers that do not exist yet."""
        with self._lock:
            for name in names:
                self._containers.setdefault(name, {})

    def put(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> BlobRef:
        """Write a blob, optionally only if unchanged (``if_match``) or absent."""
        _check_name(container, name)
        with self._lock:
            blobs = self._container(container)
            current = blobs.get(name)
            if if_none_match and current is not None:
                raise ConflictError(f"write {container}/{name}: BlobAlreadyExists")
            if if_match is not None and (current is None or current[1].etag != if_match):
                raise ConflictError(f"write {container}/{name}: ConditionNotMet")
            ref = self._new_ref(container, name, len(data), metadata or {})
            blobs[name] = (bytes(data), ref)
            return _copy(ref)

    def get(self, container: str, name: str) -> tuple[bytes, BlobRef]:
        """Read a blob and the properties of the version read."""
        with self._lock:
            return self._blob(container, name)

    def download(
        self,
        container: str,
        name: str,
        dest: Path,
        *,
        etag: str | None = None,
        max_bytes: int | None = None,
    ) -> BlobRef:
        """Write a blob into ``dest`` in chunks of ``CHUNK_BYTES``, as the Blob lake streams."""
        with self._lock:
            data, ref = self._blob(container, name)
        if etag and ref.etag != etag:
            raise ConflictError(f"read {container}/{name}: ConditionNotMet")
        if max_bytes is not None and len(data) > max_bytes:
            raise TooLargeError(f"{name}: {len(data)} bytes, over the limit of {max_bytes}")
        view = memoryview(data)
        with dest.open("wb") as file:
            for start in range(0, len(view), CHUNK_BYTES):
                file.write(view[start : start + CHUNK_BYTES])
        return ref

    def upload(
        self,
        container: str,
        name: str,
        source: Path,
        *,
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
    ) -> BlobRef:
        """Write a local file as a blob."""
        data = source.read_bytes()
        return self.put(container, name, data, metadata=metadata, if_none_match=if_none_match)

    def list(self, container: str, prefix: str = "") -> list[BlobRef]:
        """Blobs of ``container`` whose names start with ``prefix``, sorted by name."""
        with self._lock:
            blobs = self._container(container)
            return [
                _copy(ref) for name, (_, ref) in sorted(blobs.items()) if name.startswith(prefix)
            ]

    def copy(
        self,
        src: BlobRef,
        container: str,
        name: str,
        metadata: dict[str, str] | None = None,
    ) -> BlobRef:
        """Copy ``src`` to ``container/name`` (only the version ``src.etag`` names, if set)."""
        _check_name(container, name)
        with self._lock:
            data, current = self._blob(src.container, src.name)
            if src.etag and current.etag != src.etag:
                raise ConflictError(f"copy {src.container}/{src.name}: ConditionNotMet")
            blobs = self._container(container)
            meta = dict(current.metadata) if metadata is None else metadata
            ref = self._new_ref(container, name, len(data), meta)
            blobs[name] = (data, ref)
            return _copy(ref)

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        """Delete a blob, optionally only if unchanged since read."""
        with self._lock:
            _, current = self._blob(container, name)
            if if_match is not None and current.etag != if_match:
                raise ConflictError(f"delete {container}/{name}: ConditionNotMet")
            del self._containers[container][name]

    def exists(self, container: str, name: str) -> bool:
        """Whether the blob exists."""
        with self._lock:
            return name in self._containers.get(container, {})

    def uri(self, container: str, name: str) -> str:
        """The blob's URI (``memory://datalake/<container>/<name>``)."""
        return f"{ENDPOINT}/{quote(container)}/{quote(name, safe='/~')}"

    def ref(self, uri: str) -> BlobRef:
        """Parse a URI of this lake, or ``container/name``, into a reference (no I/O)."""
        if "://" in uri:
            if not uri.startswith(ENDPOINT + "/"):
                raise ValueError(f"{uri!r} is not a blob of the data lake at {ENDPOINT}")
            path = urlsplit(uri).path.lstrip("/")
        else:
            path = uri.lstrip("/")
        container, _, name = unquote(path).partition("/")
        if not container or not name:
            raise ValueError(f"{uri!r} names no blob (expected <container>/<name>)")
        return BlobRef(container=container, name=name, uri=self.uri(container, name))

    # ------------------------------------------------------------------ helpers
    def _container(self, container: str) -> dict[str, tuple[bytes, BlobRef]]:
        try:
            return self._containers[container]
        except KeyError:
            raise NotFoundError(f"container {container!r}: ContainerNotFound") from None

    def _blob(self, container: str, name: str) -> tuple[bytes, BlobRef]:
        try:
            data, ref = self._container(container)[name]
        except KeyError:
            raise NotFoundError(f"blob {container}/{name}: BlobNotFound") from None
        return data, _copy(ref)

    def _new_ref(self, container: str, name: str, size: int, metadata: dict[str, str]) -> BlobRef:
        return BlobRef(
            container=container,
            name=name,
            uri=self.uri(container, name),
            etag=f'"0x{next(self._etags):015X}"',
            size=size,
            last_modified=datetime.now(UTC),
            metadata=dict(metadata),
        )


def _check_name(container: str, name: str) -> None:
    """Refuse what Azure refuses, so a name that overflows fails here as it would there."""
    if not name or len(name) > MAX_NAME:
        raise BackendError(f"write {container}/{name[:60]}...: InvalidBlobName ({len(name)} chars)")


def _copy(ref: BlobRef) -> BlobRef:
    """Hand out copies: callers must not be able to change the stored metadata."""
    return replace(ref, metadata=dict(ref.metadata))
