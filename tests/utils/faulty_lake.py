"""A ``DataLake`` that fails on purpose: after a chosen step, or on reading chosen blobs.

Wraps a real lake (the in-memory one in the flow unit tests). ``arm(step)`` makes every call
of that step *do its work, then raise*, as a process that died right after the write would
leave things; ``disarm()`` heals it. Steps: ``copy``, ``manifest`` (the curated manifest
write), ``reason`` (a quarantine reason write), ``delete`` (a delete from landing).
``poison`` names blobs whose ``get`` and ``download`` raise ``MemoryError`` (a file too
large for memory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.interfaces import BackendError, BlobRef, DataLake
from core.lake import MANIFEST, REASON_SUFFIX

STEPS = ("copy", "manifest", "reason", "delete")


class InjectedFault(BackendError):
    """The failure this wrapper injects (a backend error, as a network failure would be)."""


class FaultyDataLake:
    """``DataLake`` delegating to ``inner``, failing after the armed step."""

    def __init__(self, inner: DataLake, landing: str = "landing") -> None:
        self.inner = inner
        self.landing = landing
        self.armed: str | None = None
        self.poison: set[str] = set()
        self.gets: list[str] = []  # every blob name read, in order
        self.faults = 0

    def arm(self, step: str) -> None:
        assert step in STEPS, step
        self.armed = step

    def disarm(self) -> None:
        self.armed = None

    def _after(self, step: str) -> None:
        if self.armed == step:
            self.faults += 1
            raise InjectedFault(f"injected fault after {step}")

    # ------------------------------------------------------------------ DataLake
    def ensure_containers(self, *names: str) -> None:
        self.inner.ensure_containers(*names)

    def put(self, container: str, name: str, data: bytes, **kw: Any) -> BlobRef:
        ref = self.inner.put(container, name, data, **kw)
        if name == MANIFEST:
            self._after("manifest")
        if name.endswith(REASON_SUFFIX):
            self._after("reason")
        return ref

    def get(self, container: str, name: str) -> tuple[bytes, BlobRef]:
        self.gets.append(name)
        if name in self.poison:
            raise MemoryError(f"{name} does not fit in memory")
        return self.inner.get(container, name)

    def download(self, container: str, name: str, dest: Path, **kw: Any) -> BlobRef:
        self.gets.append(name)
        if name in self.poison:
            raise MemoryError(f"{name} does not fit in memory")
        return self.inner.download(container, name, dest, **kw)

    def upload(self, container: str, name: str, source: Path, **kw: Any) -> BlobRef:
        return self.inner.upload(container, name, source, **kw)

    def list(self, container: str, prefix: str = "") -> list[BlobRef]:
        return self.inner.list(container, prefix)

    def copy(
        self, src: BlobRef, container: str, name: str, metadata: dict[str, str] | None = None
    ) -> BlobRef:
        ref = self.inner.copy(src, container, name, metadata)
        self._after("copy")
        return ref

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        self.inner.delete(container, name, if_match=if_match)
        if container == self.landing:
            self._after("delete")

    def exists(self, container: str, name: str) -> bool:
        return self.inner.exists(container, name)

    def ref(self, uri: str) -> BlobRef:
        return self.inner.ref(uri)

    def uri(self, container: str, name: str) -> str:
        return self.inner.uri(container, name)
