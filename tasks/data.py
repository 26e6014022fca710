"""Tasks over the data lake: find new files, read them, quarantine or merge them.

They retry: blob storage is a network service. Their inputs are clients: no caching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from core import dead_letter as dl
from core.events import data_dead_lettered, data_quarantined
from core.interfaces import BlobRef, ConflictError, NotFoundError
from core.lake import CuratedSet, Lake, LocalCopy, MergeResult
from tasks.events import emit


def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may pass next time (the network); not a refusal (a blob outside landing,
    over the size limit), a file too large for memory, or a blob changed since it was listed
    (the run's next round takes the new version), which only fail again."""
    return not isinstance(state.data, ValueError | MemoryError | ConflictError)


@task(
    name="find-new-data",
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=worth_retrying,
    cache_policy=NONE,
)
def find_new_data(lake: Lake, data_uri: str | None, drain: bool = False) -> list[BlobRef]:
    """The blob asked for (first), plus everything waiting in landing when ``drain`` or when
    no blob was asked for. A blob asked for that is gone is an error unless ``drain``: an
    event-triggered run may find its blob already taken by an earlier run."""
    lake.ensure()
    if data_uri is None:
        return lake.landed()
    try:
        asked = [lake.resolve(data_uri)]
    except NotFoundError:
        if not drain:
            raise
        get_run_logger().info("%s is no longer in landing (already taken)", data_uri)
        asked = []
    if not drain:
        return asked
    return asked + [r for r in lake.landed() if all(r.name != a.name for a in asked)]


@task(
    name="download-file",
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=worth_retrying,
    cache_policy=NONE,
)
def download_file(lake: Lake, ref: BlobRef, folder: Path) -> LocalCopy:
    """Stream the landing file to ``folder`` (refused unread when over the size limit)."""
    return lake.download(ref, folder)


@task(name="quarantine-file", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def quarantine_file(lake: Lake, ref: BlobRef, summary: str, report: dict[str, object]) -> str:
    """Move the file to quarantine with its reason, and announce it (automations notify)."""
    moved = lake.quarantine(ref, {"reason": summary, "report": report})
    emit(data_quarantined(ref, moved.uri, summary))
    return moved.uri


@task(name="merge-into-curated", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def merge_into_curated(lake: Lake, copy: LocalCopy) -> MergeResult:
    return lake.merge(copy)


@task(name="current-curated-set", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def current_curated_set(lake: Lake) -> CuratedSet | None:
    return lake.curated_set()


@task(name="begin-attempt", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def begin_attempt(lake: Lake, ref: BlobRef) -> dl.Attempts:
    """Count an attempt at ``ref`` in the lake before reading it (a killed run counts too)."""
    return dl.begin(lake, ref)


@task(name="fail-attempt", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def fail_attempt(lake: Lake, ref: BlobRef, error: str) -> dl.Attempts:
    return dl.fail(lake, ref, error)


@task(name="withdraw-attempt", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def withdraw_attempt(lake: Lake, ref: BlobRef) -> bool:
    """Take back the attempt when another run took the file or it changed (see
    ``dead_letter.withdraw``); False when the failure was the file's own."""
    return dl.withdraw(lake, ref)


@task(name="prune-attempts", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def prune_attempts(lake: Lake) -> list[str]:
    """Forget attempt counts of files that left landing by other ways."""
    return dl.prune(lake)


@task(name="clear-attempts", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def clear_attempts(lake: Lake, ref: BlobRef) -> None:
    dl.clear(lake, ref)


@task(name="dead-letter-file", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def dead_letter_file(lake: Lake, ref: BlobRef, attempts: dl.Attempts) -> str:
    """Move a file that crashed its runs to the dead-letter container, and announce it."""
    moved = dl.dead_letter(lake, ref, attempts)
    emit(data_dead_lettered(ref, moved.uri, dl.reason(attempts), attempts.count))
    return moved.uri
