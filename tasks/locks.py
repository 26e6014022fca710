"""One retraining at a time per model, however it was started.

The retraining deployment's concurrency limit (prefect.yaml) only holds runs the deployment
starts: a ``mlops retrain`` that runs the flow in its own process, or a test, bypasses it.
So the part of the run that must not overlap (read the curated set, train, judge, register,
announce) also holds a Prefect global concurrency limit. Why that and not a file lock under
the state dir: the limit lives on the Prefect server every run talks to, so it holds
across processes *and machines* (an Azure worker and a laptop's CLI share no file system),
and its lease expires when a holder dies, where a stale lock file would block forever.
Curating files needs no lock: every lake write is etag-conditioned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

LEASE_SECONDS = 300.0  # renewed while held; frees the slot this long after a holder died


def lock_name(model_name: str) -> str:
    return f"mlops-retraining-{model_name}"


@contextmanager
def model_lock(model_name: str) -> Iterator[None]:
    """Hold the model's retraining slot (waits for it; creates the limit on first use)."""
    name = lock_name(model_name)
    _ensure_limit(name)
    # strict: a limit that vanished must fail the run, not let it through unlocked.
    with concurrency(name, occupy=1, strict=True, lease_duration=LEASE_SECONDS):
        yield


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
