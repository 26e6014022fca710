"""One retraining, and one release, at a time per model, however it was started.

The deployments' concurrency limits (prefect.yaml) only hold runs the deployments start: a
``mlops retrain`` or ``mlops release`` that runs the flow in its own process, or a test,
bypasses them. So the part of a run that must not overlap holds a Prefect global concurrency
limit per model and purpose (``retraining``: read the curated set, train, judge, register,
announce; ``release``: the whole release). Why that and not a file lock under the state dir:
the limit lives on the Prefect server every run talks to, so it holds across processes *and
machines* (an Azure worker and a laptop's CLI share no file system), and its lease expires
when a holder dies, where a stale lock file would block forever.

A lease outlives a SIGKILLed holder by up to ``lock_lease_seconds`` (Prefect's server refuses
leases under 60 s). On one machine that wait is needless: each holder records its process
and lease under the state dir, and a run that finds the slot held by a process of this host
that no longer exists releases that lease itself. Holders elsewhere still expire by lease.
Curating files needs no lock: every lake write is etag-conditioned.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal
from uuid import UUID

import httpx
import psutil
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.concurrency._leases import maintain_concurrency_lease
from prefect.concurrency._sync import release_concurrency_slots_with_lease
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from core.settings import get_settings

Purpose = Literal["retraining", "release"]
POLL_SECONDS = 2.0  # how often a waiting run looks for a dead local holder
logger = logging.getLogger("mlops.locks")


def lock_name(model_name: str, purpose: Purpose = "retraining") -> str:
    return f"mlops-{purpose}-{model_name}"


@contextmanager
def model_lock(model_name: str, purpose: Purpose = "retraining") -> Iterator[None]:
    """Hold the model's slot for ``purpose`` (waits for it; creates the limit on first use)."""
    settings = get_settings()
    name = lock_name(model_name, purpose)
    lease_seconds = settings.lock_lease_seconds
    record = settings.state_path / "locks" / f"{name}.json"
    _ensure_limit(name)
    lease_id = _acquire(name, lease_seconds, record)
    _write_holder(record, str(lease_id))
    try:
        with maintain_concurrency_lease(
            lease_id, lease_seconds, raise_on_lease_renewal_failure=True
        ):
            yield
    finally:
        with suppress(FileNotFoundError):
            record.unlink()
        release_concurrency_slots_with_lease(lease_id)


def _acquire(name: str, lease_seconds: float, record: Path) -> UUID:
    """Take the slot, waiting as long as it takes; while held, release it from a dead local
    holder. (Prefect's ``concurrency(timeout_seconds=...)`` would do the waiting, but logs an
    ERROR at every timeout: a run waiting its turn is normal, not an error.)"""
    with get_client(sync_client=True) as client:
        while True:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    [name], 1, "concurrency", lease_seconds
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:  # 423 Locked: held by another run
                    raise
                wait = float(exc.response.headers.get("Retry-After", POLL_SECONDS))
            else:
                acquired = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
                if not acquired.limits:  # the limit vanished: never run unlocked
                    release_concurrency_slots_with_lease(acquired.lease_id)
                    raise RuntimeError(f"concurrency limit {name} does not exist")
                return acquired.lease_id
            _reclaim_from_dead_holder(record, name)
            time.sleep(min(max(wait, 0.1), POLL_SECONDS))  # the server's back-off, bounded


def _ensure_limit(name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            pass  # another run created it at the same moment


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (None: there is none); with the pid, names one process."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _write_holder(record: Path, lease_id: str) -> None:
    pid = os.getpid()
    holder = {
        "host": socket.gethostname(),
        "pid": pid,
        "started": _process_started(pid),
        "lease_id": lease_id,
    }
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(f".{pid}.tmp")
    tmp.write_text(json.dumps(holder))
    tmp.replace(record)


def _reclaim_from_dead_holder(record: Path, name: str) -> None:
    """Release the slot's lease when its recorded holder is a dead process of this host."""
    try:
        holder = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        return  # no local holder known (or one being written): wait for the lease
    if holder.get("host") != socket.gethostname():
        return
    if _process_started(int(holder["pid"])) == holder.get("started"):
        return  # alive (a reused pid has another start time)
    logger.warning(
        "%s: holder process %s died holding the lock; releasing its lease", name, holder["pid"]
    )
    with suppress(FileNotFoundError):
        record.unlink()
    with suppress(Exception):  # already expired or released: the next attempt acquires
        release_concurrency_slots_with_lease(holder["lease_id"])
