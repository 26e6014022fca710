"""Issue 8, overlaps and lost events, over real HTTP: a CLI run and a triggered run over 50
files with random re-uploads, while a relay in front of the Prefect API refuses the events
API (``/api/events/in``, the websocket Prefect's events client opens); afterwards every file
is merged once, no data is registered twice, a later run re-announces the version the events
API missed, the announcement reaches the API once, and that version is released.

The Prefect server is the session's full one (``prefect_server``): its event persister makes
the events readable through ``/api/events/filter``, where they are counted.
"""

from __future__ import annotations

import contextvars
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

import flows.retraining as retraining_module
from backends import Backends
from backends.local.memory_target import InMemoryImageBuilder, InMemoryTarget
from core.events import MODEL_REGISTERED, model_resource_id
from core.interfaces import Endpoint
from core.lake import MANIFEST
from core.outcomes import ANNOUNCED_TAG
from core.results import ReleaseReport, RetrainingSummary
from core.settings import Settings, get_settings
from core.smoke import SmokeCheck, SmokeConfig, SmokeReport
from flows.outcome import result_of
from flows.release import release
from flows.resources import ReleaseResources
from flows.retraining import retraining
from mlops.runs import run_flow
from tests.faults.flows.test_retraining import (
    arrive_during_runs,
    assert_versions_unique,
    sha,
    slices,
)
from tests.utils.api_relay import FaultyRelay
from tests.utils.figures import ReliabilityFigures
from tests.utils.flow_harness import fast_validation, smoke_report

EVENTS_IN = "/api/events/in"
FILES = 50


class PassingProbe:
    """Every smoke test passes; the endpoint serves what it was deployed with."""

    def smoke_test(
        self, endpoint: Endpoint, golden: dict[str, Any], expected_version: str, config: SmokeConfig
    ) -> SmokeReport:
        check = SmokeCheck(name="golden", passed=True, detail="stand-in", duration_ms=0.1)
        return smoke_report(endpoint, expected_version, [check])

    def served_version(self, endpoint: Endpoint) -> str:
        return endpoint.model_version


def registered_events(name: str, version: str) -> list[str]:
    """Ids of the ``mlops.model.registered`` events the API holds for ``version``."""
    flt = EventFilter(
        event=EventNameFilter(name=[MODEL_REGISTERED]),
        resource=EventResourceFilter(id=[model_resource_id(name, version)]),
    )
    with get_client(sync_client=True) as client:
        return [str(e.id) for e in client.read_events(filter=flt, limit=50).events]


def wait_for(what: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)  # polling the API: there is no event to wait on
    return found


def test_cli_and_triggered_runs_with_the_events_api_down_merge_once_and_release_once(
    backends: Backends,
    settings: Settings,
    relay: FaultyRelay,
    monkeypatch: pytest.MonkeyPatch,
    reliability_figures: ReliabilityFigures,
) -> None:
    monkeypatch.setenv("MLOPS_MODEL_NAME", "overlap-events")
    get_settings.cache_clear()
    name = get_settings().model_name
    monkeypatch.setattr(retraining_module, "validate_data", fast_validation)
    lake = backends.datalake
    landing = settings.landing_container
    lake.ensure_containers(landing)
    blobs = slices(FILES, 60, seed=11)
    waiting = FILES - 8  # the rest arrive while the runs work
    uploaded: set[str] = set()
    for i, blob in enumerate(blobs[:waiting]):
        lake.put(landing, f"f{i:02}.csv", blob)
        uploaded.add(sha(blob))

    relay.block(EVENTS_IN)
    states: dict[str, Any] = {}
    errors: list[BaseException] = []

    def cli() -> None:  # `mlops retrain`: no deployment published, so the flow runs here
        states["cli"] = run_flow(
            "retraining/retraining", {"resources": backends}, RetrainingSummary
        )

    def triggered() -> None:  # what the blob-created trigger starts (prefect.yaml)
        states["triggered"] = retraining(
            data_uri=f"{landing}/f00.csv", drain_landing=True, resources=backends, return_state=True
        )

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        return run

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(guarded(t),))
        for t in (cli, triggered)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    rng = random.Random(7)
    uploaded |= arrive_during_runs(lake, landing, blobs, waiting, rng, (0.1, 0.6))
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert relay.refused[EVENTS_IN] > 0  # the events API was asked for, and was down

    # What the blocked runs registered is not announced: tagged so, not lost.
    unannounced = [
        v for v in backends.registry.list_versions(name) if v.tags.get(ANNOUNCED_TAG) != "true"
    ]
    assert unannounced, "a version was registered while the events API was down"
    assert not all(s.is_completed() for s in (states["cli"][0], states["triggered"]))

    relay.unblock(EVENTS_IN)
    summaries = []
    for _ in range(3):  # later runs: what landed last, and the re-announcement
        state = retraining(resources=backends, return_state=True)
        assert state.is_completed(), state.message
        summaries.append(result_of(state, RetrainingSummary))
        if not lake.list(landing):
            break
    assert lake.list(landing) == []

    manifest = json.loads(lake.get(settings.curated_container, MANIFEST)[0])
    merged = Counter(manifest["sources"])
    lost = len(uploaded - set(merged))
    duplicates = sum(n - 1 for n in merged.values())
    versions = backends.registry.list_versions(name)
    per_data = Counter((v.tags["data_fingerprint"], v.tags["params_digest"]) for v in versions)
    reliability_figures.add(
        "overlaps and lost events",
        files_lost=lost,
        duplicates=duplicates + sum(n - 1 for n in per_data.values()),
    )
    assert (lost, duplicates) == (0, 0)
    assert manifest["rows"] == 60 * len(uploaded)
    assert_versions_unique(backends, settings)

    candidate = backends.registry.get_alias(name, "candidate")
    assert candidate is not None and candidate.tags.get(ANNOUNCED_TAG) == "true"
    events = wait_for(lambda: registered_events(name, candidate.version))
    assert len(events) == 1, events  # announced once, however many runs tried
    for version in versions:
        assert len(registered_events(name, version.version)) <= 1

    # The trigger releases the announced version (prefect.yaml: release-on-model-registered).
    res = ReleaseResources(
        registry=backends.registry,
        builder=InMemoryImageBuilder(),
        target=InMemoryTarget(),
        probe=PassingProbe(),
    )
    released = release(model_name=name, version=candidate.version, resources=res, return_state=True)
    report = result_of(released, ReleaseReport)
    assert released.is_completed() and report is not None, released.message
    current = res.target.current("production")
    assert current is not None and current.model_version == candidate.version
    elapsed = time.monotonic() - started
    assert elapsed < 90, f"{elapsed:.0f} s"
