"""How data files move through the lake: landing -> curated (accepted) or quarantine (rejected).

Layout (container / blob):

- ``landing/<name>``: new files arrive here; nothing else writes to it.
- ``curated/training/manifest.json``: the commit point of the curated training set: which
  source files were merged (by sha256), the current data blob, its fingerprint and row count.
- ``curated/training/data-<fingerprint>.parquet``: immutable snapshots of the training set.
- ``curated/accepted/<stamp>-<sha8>-<name>``: accepted landing files, archived as received.
- ``quarantine/<stamp>-<tag>-<name>`` + ``.reason.json``: rejected files with the reason beside
  them (``tag`` names the blob version, so two files of one name never overwrite each other).

Files leave landing only after their copy is safely written elsewhere: nothing is deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.interfaces import BlobRef, ConflictError, DataLake, NotFoundError
from training import data as tdata

if TYPE_CHECKING:
    from core.settings import Settings

MANIFEST = "training/manifest.json"


@dataclass(frozen=True)
class CuratedSet:
    """The curated training set as the manifest describes it."""

    data_uri: str
    fingerprint: str
    rows: int
    sources: tuple[str, ...]  # sha256 of every merged source file


@dataclass(frozen=True)
class MergeResult:
    merged: bool  # False: this exact file was merged before (replay)
    curated: CuratedSet
    archived_uri: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


class Lake:
    """The lake's containers and the rules for moving files between them."""

    def __init__(self, datalake: DataLake, landing: str, curated: str, quarantine: str) -> None:
        self.datalake = datalake
        self.landing = landing
        self.curated = curated
        self.quarantine_container = quarantine

    @classmethod
    def of(cls, datalake: DataLake, settings: Settings) -> Lake:
        """The lake with the container names the settings give."""
        return cls(
            datalake,
            settings.landing_container,
            settings.curated_container,
            settings.quarantine_container,
        )

    def ensure(self) -> None:
        self.datalake.ensure_containers(self.landing, self.curated, self.quarantine_container)

    def landed(self) -> list[BlobRef]:
        """Every file waiting in landing, oldest first."""
        refs = self.datalake.list(self.landing)
        return sorted(
            refs, key=lambda r: (r.last_modified or datetime.min.replace(tzinfo=UTC), r.name)
        )

    def resolve(self, uri: str) -> BlobRef:
        """A landing blob from a URI or ``container/name``; fails clearly when it is not there."""
        ref = self.datalake.ref(uri)
        if not self.datalake.exists(ref.container, ref.name):
            raise NotFoundError(f"no such blob: {ref.container}/{ref.name}")
        return ref

    def read(self, ref: BlobRef) -> tuple[bytes, BlobRef]:
        return self.datalake.get(ref.container, ref.name)

    # ------------------------------------------------------------------ curated set
    def curated_set(self) -> CuratedSet | None:
        manifest, _ = self._manifest()
        return _curated_from(manifest) if manifest else None

    def load_curated(self, curated: CuratedSet) -> pd.DataFrame:
        ref = self.datalake.ref(curated.data_uri)
        blob, _ = self.datalake.get(ref.container, ref.name)
        return pd.read_parquet(io.BytesIO(blob))

    def merge(self, ref: BlobRef, blob: bytes, frame: pd.DataFrame) -> MergeResult:
        """Merge an accepted file into the curated set (once per file content) and archive it.

        The manifest is written with an etag condition, so two concurrent merges cannot lose
        each other's rows: the loser raises ``ConflictError`` and is retried by its caller.
        """
        digest = sha256(blob)
        manifest, etag = self._manifest()
        if manifest and digest in manifest["sources"]:
            curated = _curated_from(manifest)
            merged = False
        else:
            old = self.load_curated(_curated_from(manifest)) if manifest else None
            combined = tdata.merge(old, tdata.to_training_frame(frame))
            fingerprint = tdata.fingerprint(combined)
            buf = io.BytesIO()
            combined.to_parquet(buf, index=False)
            data_ref = self.datalake.put(
                self.curated, f"training/data-{fingerprint[:16]}.parquet", buf.getvalue()
            )
            sources = [*(manifest["sources"] if manifest else []), digest]
            new_manifest = {
                "data_uri": data_ref.uri,
                "fingerprint": fingerprint,
                "rows": len(combined),
                "sources": sources,
                "history": [
                    *(manifest.get("history", []) if manifest else []),
                    {"file": ref.name, "sha256": digest, "rows": len(frame), "merged_at": _stamp()},
                ],
            }
            self.datalake.put(
                self.curated,
                MANIFEST,
                json.dumps(new_manifest, indent=2).encode(),
                if_match=etag or None,
                if_none_match=etag is None,
            )
            curated = _curated_from(new_manifest)
            merged = True
        archived = self._move(
            ref,
            self.curated,
            f"accepted/{_stamp()}-{digest[:8]}-{_basename(ref.name)}",
            {"sha256": digest, "replay": str(not merged).lower()},
        )
        return MergeResult(merged=merged, curated=curated, archived_uri=archived.uri)

    # ------------------------------------------------------------------ quarantine
    def quarantine(self, ref: BlobRef, reason: dict[str, Any]) -> BlobRef:
        """Move a rejected file to quarantine with ``<name>.reason.json`` beside it."""
        # Same base name in the same second (another folder, a re-upload): a distinct name.
        tag = sha256(f"{ref.uri}\0{ref.etag}".encode())[:8]
        target = f"{_stamp()}-{tag}-{_basename(ref.name)}"
        # The copy comes first: if the file changed since it was validated, it fails and
        # leaves no reason without a file behind.
        copied = self.datalake.copy(
            ref, self.quarantine_container, target, metadata={"kind": "quarantined"}
        )
        self.datalake.put(
            self.quarantine_container,
            f"{target}.reason.json",
            json.dumps({"source": ref.uri, **reason}, indent=2, default=str).encode(),
            metadata={"kind": "reason"},
        )
        self._remove_from_landing(ref)
        return copied

    def _move(self, ref: BlobRef, container: str, name: str, metadata: dict[str, str]) -> BlobRef:
        copied = self.datalake.copy(ref, container, name, metadata=metadata)
        self._remove_from_landing(ref)
        return copied

    def _remove_from_landing(self, ref: BlobRef) -> None:
        try:
            self.datalake.delete(ref.container, ref.name, if_match=ref.etag or None)
        except (NotFoundError, ConflictError):
            # Already moved by someone else, or re-uploaded since we read it: the new upload
            # stays in landing for the next run; our copy is safe.
            pass

    def _manifest(self) -> tuple[dict[str, Any] | None, str | None]:
        try:
            blob, ref = self.datalake.get(self.curated, MANIFEST)
        except NotFoundError:
            return None, None
        return json.loads(blob), ref.etag


def _curated_from(manifest: dict[str, Any]) -> CuratedSet:
    return CuratedSet(
        data_uri=manifest["data_uri"],
        fingerprint=manifest["fingerprint"],
        rows=int(manifest["rows"]),
        sources=tuple(manifest["sources"]),
    )
