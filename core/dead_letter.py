"""Files that crash their runs: counted per blob version, then moved to the dead-letter container.

A file that fails validation is quarantined; one that makes the run itself fail (too large for
memory, a name no copy can take, a bug) would otherwise stay in landing and be taken again by
every run, forever. So every attempt at a landing file is counted in the lake before the
file is read (``begin``): a run killed outright (out of memory) still counts. Success clears
the count (``clear``); a caught failure records its error (``fail``); at ``max_attempts`` the
file moves to ``dead-letter/files/`` with ``.error.json`` beside it (``dead_letter``).

Counts live in ``dead-letter/attempts/<hash of the blob name>.json`` (etag-conditioned
writes, so concurrent runs never lose a count), keyed by the blob's etag: a re-upload starts
again from zero. They survive restarts and work on any ``DataLake``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.interfaces import BlobRef, ConflictError, NotFoundError
from core.lake import Lake, basename, fit_name, sha256, stamp, version_tag

ATTEMPTS_PREFIX = "attempts/"
FILES_PREFIX = "files/"
ERROR_SUFFIX = ".error.json"
KEEP_ERRORS = 10  # the last errors kept per file: the record must stay small
_TRIES = 10  # conditional writes lost to concurrent runs before giving up


@dataclass(frozen=True)
class Attempts:
    """What is known of the attempts at one version of one landing file."""

    count: int  # attempts begun, this one included
    errors: tuple[str, ...]  # the errors of failed attempts (a killed run leaves none)


def begin(lake: Lake, ref: BlobRef) -> Attempts:
    """Count one more attempt at ``ref`` (before reading it); returns the count so far."""
    return _update(lake, ref, None)


def fail(lake: Lake, ref: BlobRef, error: str) -> Attempts:
    """Record why the attempt ``begin`` counted failed."""
    return _update(lake, ref, error)


def withdraw(lake: Lake, ref: BlobRef) -> bool:
    """Take back the attempt ``begin`` counted if it was not the file's fault: a concurrent
    run took the file first, or it was uploaded again meanwhile. False (nothing taken back)
    when this very version is still waiting: then the failure was the file's own."""
    if any(r.name == ref.name and r.etag == ref.etag for r in lake.landed_as(ref.name)):
        return False
    _update(lake, ref, None, step=-1)
    return True


def prune(lake: Lake) -> list[str]:
    """Forget the attempts at files no longer in landing (taken or deleted meanwhile by
    someone else); returns the landing names forgotten."""
    waiting = {ref.name for ref in lake.datalake.list(lake.landing)}
    forgotten = []
    for record_ref in lake.datalake.list(lake.dead_letter, ATTEMPTS_PREFIX):
        try:
            blob, current = lake.datalake.get(lake.dead_letter, record_ref.name)
            name = json.loads(blob).get("name")
            if name is not None and name not in waiting:
                lake.datalake.delete(lake.dead_letter, record_ref.name, if_match=current.etag)
                forgotten.append(name)
        except (NotFoundError, ConflictError):
            continue  # cleared or counted meanwhile: not ours to judge now
    return forgotten


def clear(lake: Lake, ref: BlobRef) -> None:
    """The file is curated or quarantined: forget its attempts."""
    try:
        lake.datalake.delete(lake.dead_letter, _record_name(ref))
    except NotFoundError:
        pass


def dead_letter(lake: Lake, ref: BlobRef, attempts: Attempts) -> BlobRef:
    """Move ``ref`` to the dead-letter container with ``.error.json`` (its errors) beside it.

    Names derive from the blob version, so a retry after a partial move writes the same ones.
    """
    target = fit_name(
        f"{FILES_PREFIX}{stamp(ref.last_modified)}-{version_tag(ref)}-",
        basename(ref.name),
        len(ERROR_SUFFIX),
    )
    copied = lake.datalake.copy(ref, lake.dead_letter, target, metadata={"kind": "dead-letter"})
    error = {
        "source": ref.uri,
        "etag": ref.etag,
        "size": ref.size,
        "attempts": attempts.count,
        "reason": reason(attempts),
        "errors": list(attempts.errors),
    }
    lake.datalake.put(
        lake.dead_letter,
        target + ERROR_SUFFIX,
        json.dumps(error, indent=2).encode(),
        metadata={"kind": "error"},
    )
    lake.remove_from_landing(ref)
    clear(lake, ref)
    return copied


def reason(attempts: Attempts) -> str:
    """One line: how many attempts failed and the last error known."""
    last = attempts.errors[-1] if attempts.errors else "the run stopped without an error"
    return f"{attempts.count} attempt(s) failed; last: {last}"


def _record_name(ref: BlobRef) -> str:
    return f"{ATTEMPTS_PREFIX}{sha256(f'{ref.container}/{ref.name}'.encode())[:32]}.json"


def _update(lake: Lake, ref: BlobRef, error: str | None, step: int = 1) -> Attempts:
    name = _record_name(ref)
    for _ in range(_TRIES):
        record: dict[str, Any] | None
        try:
            blob, current = lake.datalake.get(lake.dead_letter, name)
            record, etag = json.loads(blob), current.etag
        except NotFoundError:
            record, etag = None, None
        if record is None or record.get("etag") != ref.etag:  # a new upload: start again
            record = {
                "source": ref.uri,
                "name": ref.name,
                "etag": ref.etag,
                "count": 0,
                "errors": [],
            }
        if error is None:
            record["count"] = max(0, record["count"] + step)
        else:
            stamped = f"{datetime.now(UTC).isoformat(timespec='seconds')} {error[:500]}"
            record["errors"] = [*record["errors"], stamped][-KEEP_ERRORS:]
        try:
            lake.datalake.put(
                lake.dead_letter,
                name,
                json.dumps(record).encode(),
                if_match=etag,
                if_none_match=etag is None,
            )
        except ConflictError:
            continue  # another run counted at the same time: read its count and add ours
        return Attempts(count=int(record["count"]), errors=tuple(record["errors"]))
    raise ConflictError(f"could not count an attempt at {ref.uri}: too many concurrent writers")
