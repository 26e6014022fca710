"""Issue 8, defect 6: two retraining runs that overlap on the same data train once, because
training, judging and registering hold the model lock (tasks/locks.py, a Prefect global
concurrency limit on the API server: the real one here, not the flow unit tests' stand-in).

Without the lock both runs find the curated set untrained and both train (the idempotent
registration still keeps one version, which is why counting versions proves nothing here:
the training jobs are what the lock saves). The first training is held until the second run
is either training too (no lock) or has reached the lock a while ago (lock): the runs
overlap whatever their timing, and only the lock keeps the count at one.

Why the hold: left to themselves, two runs started together do not overlap here. Both
create their flow run at the same moment; the SQLite-backed API answers one of them 503
("database is locked") and Prefect's client backs off ~2 s (exponential, with jitter), by
which time the other run (~1.5 s) has trained and registered: the late run finds the data
"up to date" with or without the lock (seen with client debug logging: "Received response
with retryable status code 503. Another attempt will be made in 1.83s").
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import flows.retraining as retraining_module
from backends import Backends
from core.interfaces import Compute, TrainingJobSpec
from core.lake import Lake
from core.results import RetrainingSummary
from core.settings import Settings
from flows.outcome import result_of
from flows.retraining import retraining
from tests.faults.flows.test_retraining import slices

HOLD = 5.0  # how long the first training waits for a second one once the other run is in


class HeldCompute:
    """``inner``, counting jobs; the first job waits for a second one (bounded), so an
    unlocked second run is caught training at the same time."""

    def __init__(self, inner: Compute, other_arrived: threading.Event) -> None:
        self.inner, self.other_arrived = inner, other_arrived
        self.jobs: list[tuple[float, TrainingJobSpec]] = []
        self._second = threading.Event()
        self._count = threading.Lock()

    def submit(self, spec: TrainingJobSpec) -> str:
        with self._count:
            self.jobs.append((time.monotonic(), spec))
            first = len(self.jobs) == 1
        if first:
            deadline = time.monotonic() + 60
            while not self._second.is_set() and time.monotonic() < deadline:
                if self.other_arrived.wait(0.05):  # then give it HOLD s to start training
                    self._second.wait(HOLD)
                    break
        else:
            self._second.set()
        return self.inner.submit(spec)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Set when the second run reaches the model lock (the real one, called through)."""
    real: Callable[..., AbstractContextManager[None]] = retraining_module.model_lock
    second = threading.Event()
    count: list[float] = []

    @contextmanager
    def observed(name: str, purpose: Any = "retraining") -> Iterator[None]:
        count.append(time.monotonic())
        if len(count) == 2:
            second.set()
        with real(name, purpose):
            yield

    monkeypatch.setattr(retraining_module, "model_lock", observed)
    yield second


def test_two_overlapping_runs_on_the_same_data_train_once(
    backends: Backends, settings: Settings, arrivals: threading.Event, tmp_path: Path
) -> None:
    # The data is curated already (a run that merged it died before training, or a cron run
    # and a CLI run with nothing new in landing): both runs find it untrained.
    lake = Lake.of(backends.datalake, settings)
    backends.datalake.ensure_containers(settings.landing_container, settings.curated_container)
    for i, blob in enumerate(slices(2, 150, seed=21)):
        ref = backends.datalake.put(settings.landing_container, f"seed-{i}.csv", blob)
        lake.merge(lake.download(ref, tmp_path))
    assert backends.datalake.list(settings.landing_container) == []
    compute = HeldCompute(backends.compute, arrivals)
    held = replace(backends, compute=compute)

    spans: dict[str, tuple[float, float]] = {}
    states: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(who: str) -> None:
        try:
            started = time.monotonic()
            states[who] = retraining(resources=held, return_state=True)
            spans[who] = (started, time.monotonic())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(run, who))
        for who in ("cli", "triggered")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    (a_start, a_end), (b_start, b_end) = sorted(spans.values())
    assert b_start < a_end, "the runs did not overlap"  # else the test proves nothing
    assert arrivals.is_set(), "the second run never reached the model lock"

    summaries = [result_of(state, RetrainingSummary) for state in states.values()]
    outcomes = sorted(s.outcome if s else "crashed" for s in summaries)
    assert len(compute.jobs) == 1, f"{len(compute.jobs)} training jobs: {outcomes}"
    assert outcomes == ["registered", "up to date"]
    assert len(backends.registry.list_versions(settings.model_name)) == 1
