"""How data files move through the lake: landing -> curated (accepted) or quarantine (rejected).

Layout (container / blob):

- ``landing/<name>``: new files arrive here; nothing else writes to it.
- ``curated/training/manifest.json``: the commit point of the curated training set: which
  source files were merged (by sha256), the current data blob, its fingerprint and row count.
- ``curated/training/data-<fingerprint>.parquet``: immutable snapshots of the training set.
- ``curated/accepted/<stamp>-<sha8>-<name>``: accepted landing files, archived as received.
- ``quarantine/<stamp>-<tag>-<name>`` + ``.reason.json``: rejected files with the reason beside
  them (``tag`` names the blob version, so two files of one name never overwrite each other).
- ``dead-letter/files/<stamp>-<tag>-<name>`` + ``.error.json``: files that crashed their runs
  too often (``core/dead_letter.py``); ``dead-letter/attempts/``: their attempt counts.

Files leave landing only after their copy is safely written elsewhere: nothing is deleted.
Every name a file gets is derived from the landing blob's version (its etag and upload time),
never from the clock, so a step that failed and is run again writes the same names: a file
ends up exactly once in curated or quarantine, however often a run stopped half way.
Names longer than a blob name may be are shortened deterministically (``fit_name``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.interfaces import BlobRef, ConflictError, DataLake, NotFoundError, TooLargeError
from training import chunks

if TYPE_CHECKING:
    from core.settings import Settings

MANIFEST = "training/manifest.json"
REASON_SUFFIX = ".reason.json"
# Azure Blob Storage refuses longer names; Azurite and the in-memory lake follow it.
MAX_BLOB_NAME = 1024


class NotInLandingError(ValueError):
    """A blob outside the landing container was given as new data: only landing files are
    taken (taking one deletes it from where it was)."""


@dataclass(frozen=True)
class CuratedSet:
    """The curated training set as the manifest describes it."""

    data_uri: str
    fingerprint: str
    rows: int
    sources: tuple[str, ...]  # sha256 of every merged source file


@dataclass(frozen=True)
class LocalCopy:
    """A landing file streamed to local disk: the version read and the sha256 of its bytes."""

    path: Path
    ref: BlobRef
    sha256: str


@dataclass(frozen=True)
class MergeResult:
    merged: bool  # False: this exact file was merged before (replay)
    curated: CuratedSet
    archived_uri: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stamp(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def version_tag(ref: BlobRef) -> str:
    """Eight hex digits naming one version of one blob (its URI and etag)."""
    return sha256(f"{ref.uri}\0{ref.etag}".encode())[:8]


def fit_name(prefix: str, name: str, reserve: int = len(REASON_SUFFIX)) -> str:
    """``prefix + name``, shortened when it (plus ``reserve`` characters of a suffix written
    beside it) would exceed the blob name limit: the head of ``name``, ``~``, a hash of the
    whole ``name`` and its extension. Deterministic, so a retry finds the same name.

    Raises:
        ValueError: ``prefix`` alone leaves no room (a programming error, not bad data).
    """
    if len(prefix) + len(name) + reserve <= MAX_BLOB_NAME:
        return prefix + name
    digest = sha256(name.encode())[:16]
    _, dot, ext = name.rpartition(".")
    suffix = f"~{digest}" + (f".{ext}" if dot and 0 < len(ext) <= 16 else "")
    keep = MAX_BLOB_NAME - reserve - len(prefix) - len(suffix)
    if keep < 0:
        raise ValueError(f"blob name prefix too long: {len(prefix)} characters")
    return prefix + name[:keep] + suffix


def basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _safe(name: str) -> str:
    """A local file name for a blob's base name (its extension kept: readers use it)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[-200:] or "data"


class Lake:
    """The lake's containers and the rules for moving files between them."""

    def __init__(
        self,
        datalake: DataLake,
        landing: str,
        curated: str,
        quarantine: str,
        dead_letter: str = "dead-letter",
        max_bytes: int | None = None,
        collected: str = "collected",
    ) -> None:
        self.datalake = datalake
        self.landing = landing
        self.curated = curated
        self.quarantine_container = quarantine
        self.dead_letter = dead_letter
        self.max_bytes = max_bytes
        self.collected = collected  # written by the scoring services (training/collected.py)

    @classmethod
    def of(cls, datalake: DataLake, settings: Settings) -> Lake:
        """The lake with the container names the settings give."""
        return cls(
            datalake,
            settings.landing_container,
            settings.curated_container,
            settings.quarantine_container,
            settings.dead_letter_container,
            settings.max_file_bytes,
            settings.collected_container,
        )

    def ensure(self) -> None:
        self.datalake.ensure_containers(
            self.landing, self.curated, self.quarantine_container, self.dead_letter, self.collected
        )

    def landed(self) -> list[BlobRef]:
        """Every file waiting in landing, oldest first."""
        refs = self.datalake.list(self.landing)
        return sorted(
            refs, key=lambda r: (r.last_modified or datetime.min.replace(tzinfo=UTC), r.name)
        )

    def resolve(self, uri: str) -> BlobRef:
        """A landing blob from a URI or ``container/name``, with its etag and size.

        Raises:
            NotInLandingError: The blob is in another container (taking it would delete it).
            NotFoundError: It is not there.
        """
        ref = self.datalake.ref(uri)
        if ref.container != self.landing:
            raise NotInLandingError(
                f"{ref.container}/{ref.name} is not in the landing container "
                f"{self.landing!r}: only landing files can be taken as new data"
            )
        # From the listing, not get(): the size must be known before a byte is read.
        for listed in self.landed_as(ref.name):
            return listed
        raise NotFoundError(f"no such blob: {ref.container}/{ref.name}")

    def landed_as(self, name: str) -> list[BlobRef]:
        """The landing blob named ``name`` as listed (etag, size), or nothing."""
        return [r for r in self.datalake.list(self.landing, prefix=name) if r.name == name]

    def too_large(self, ref: BlobRef) -> str | None:
        """Why ``ref`` must not be read (over the size limit), or None."""
        if self.max_bytes is not None and ref.size > self.max_bytes:
            return (
                f"{ref.name}: {ref.size} bytes, over the limit of {self.max_bytes} "
                "(MLOPS_MAX_FILE_BYTES): not read"
            )
        return None

    def read(self, ref: BlobRef) -> tuple[bytes, BlobRef]:
        """The blob's content; refuses, unread, one the listing says is over the size limit."""
        reason = self.too_large(ref)
        if reason:
            raise TooLargeError(reason)
        return self.datalake.get(ref.container, ref.name)

    def download(self, ref: BlobRef, folder: Path) -> LocalCopy:
        """Stream the version of ``ref`` that was listed into ``folder`` (memory stays flat
        whatever the size); refuses, unread, a file over the size limit.

        Raises:
            TooLargeError: Over the limit (by the listing, or grown since).
            ConflictError: The blob changed since it was listed (the next round takes it).
        """
        reason = self.too_large(ref)
        if reason:
            raise TooLargeError(reason)
        dest = folder / f"{version_tag(ref)}-{_safe(basename(ref.name))}"
        read = self.datalake.download(
            ref.container, ref.name, dest, etag=ref.etag or None, max_bytes=self.max_bytes
        )
        return LocalCopy(path=dest, ref=read, sha256=chunks.file_sha256(dest))

    # ------------------------------------------------------------------ curated set
    def curated_set(self) -> CuratedSet | None:
        manifest, _ = self._manifest()
        return _curated_from(manifest) if manifest else None

    def load_curated(self, curated: CuratedSet) -> pd.DataFrame:
        """The whole curated set as a training frame (small sets; see ``holdout``)."""
        with TemporaryDirectory(prefix="curated-") as tmp:
            path, name = self._download_curated(curated, Path(tmp))
            return chunks.read_training_frame(path, name)

    def holdout(self, curated: CuratedSet, fraction: float, seed: int) -> pd.DataFrame:
        """The curated set's holdout rows (as the training job splits), read chunk by chunk."""
        with TemporaryDirectory(prefix="curated-") as tmp:
            path, name = self._download_curated(curated, Path(tmp))
            return chunks.holdout_of(path, name, fraction, seed)

    def _download_curated(self, curated: CuratedSet, folder: Path) -> tuple[Path, str]:
        ref = self.datalake.ref(curated.data_uri)
        # Sets written before the Parquet snapshots may be CSV: the extension tells.
        name = basename(ref.name)
        dest = folder / _safe(name)
        self.datalake.download(ref.container, ref.name, dest)
        return dest, name

    def merge(self, copy: LocalCopy) -> MergeResult:
        """Merge an accepted file into the curated set (once per file content) and archive it.

        The new snapshot is written chunk by chunk (the old set's row groups, then the file's
        chunks) to a local Parquet file and uploaded from there: memory holds one chunk and
        the row hashes of the fingerprint (8 bytes a row), not the set.

        The manifest is written with an etag condition, so two concurrent merges cannot lose
        each other's rows: the loser raises ``ConflictError`` and is retried by its caller.
        """
        ref, digest = copy.ref, copy.sha256
        manifest, etag = self._manifest()
        if manifest and digest in manifest["sources"]:
            curated = _curated_from(manifest)
            merged = False
        else:
            with TemporaryDirectory(prefix="merge-") as tmp:
                parts: list[Iterable[pd.DataFrame]] = []
                if manifest:
                    old, name = self._download_curated(_curated_from(manifest), Path(tmp))
                    parts.append(chunks.iter_training_frames(old, name))
                parts.append(chunks.iter_training_frames(copy.path, ref.name))
                snapshot = Path(tmp) / "snapshot.parquet"
                rows, fingerprint = chunks.write_training_parquet(chain(*parts), snapshot)
                data_ref = self.datalake.upload(
                    self.curated, f"training/data-{fingerprint[:16]}.parquet", snapshot
                )
            old_rows = int(manifest["rows"]) if manifest else 0
            sources = [*(manifest["sources"] if manifest else []), digest]
            new_manifest = {
                "data_uri": data_ref.uri,
                "fingerprint": fingerprint,
                "rows": rows,
                "sources": sources,
                "history": [
                    *(manifest.get("history", []) if manifest else []),
                    {
                        "file": ref.name,
                        "sha256": digest,
                        "rows": rows - old_rows,
                        "merged_at": stamp(),
                    },
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
            fit_name(f"accepted/{stamp(ref.last_modified)}-{digest[:8]}-", basename(ref.name)),
            {"sha256": digest, "replay": str(not merged).lower()},
        )
        return MergeResult(merged=merged, curated=curated, archived_uri=archived.uri)

    # ------------------------------------------------------------------ quarantine
    def quarantine(self, ref: BlobRef, reason: dict[str, Any]) -> BlobRef:
        """Move a rejected file to quarantine with ``<name>.reason.json`` beside it."""
        # Same base name in the same second (another folder, a re-upload): a distinct name.
        # The same version of the same file: the same name, so a retry overwrites its copy.
        target = fit_name(f"{stamp(ref.last_modified)}-{version_tag(ref)}-", basename(ref.name))
        # The copy comes first: if the file changed since it was validated, it fails and
        # leaves no reason without a file behind.
        copied = self._copy_once(
            ref, self.quarantine_container, target, metadata={"kind": "quarantined"}
        )
        self.datalake.put(
            self.quarantine_container,
            f"{target}{REASON_SUFFIX}",
            json.dumps({"source": ref.uri, **reason}, indent=2, default=str).encode(),
            metadata={"kind": "reason"},
        )
        self._remove_from_landing(ref)
        return copied

    def _move(self, ref: BlobRef, container: str, name: str, metadata: dict[str, str]) -> BlobRef:
        copied = self._copy_once(ref, container, name, metadata)
        self._remove_from_landing(ref)
        return copied

    def _copy_once(
        self, ref: BlobRef, container: str, name: str, metadata: dict[str, str]
    ) -> BlobRef:
        """Copy ``ref`` to ``container/name``; when the source is gone but the copy is there
        (an earlier try copied and deleted, then failed to hear back), that copy."""
        try:
            return self.datalake.copy(ref, container, name, metadata=metadata)
        except NotFoundError:
            for listed in self.datalake.list(container, prefix=name):
                if listed.name == name:
                    return listed
            raise

    def remove_from_landing(self, ref: BlobRef) -> None:
        """Delete the version ``ref`` names from landing (a newer upload stays)."""
        self._remove_from_landing(ref)

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
