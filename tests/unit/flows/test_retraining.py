"""Every outcome of the retraining flow, on in-memory backends."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import tasks.registry as registry_tasks
from backends import Backends
from backends.local.registry import LocalModelRegistry
from core import provenance
from core.events import MODEL_REGISTERED, EventSpec
from core.interfaces import BackendError
from core.outcomes import ANNOUNCED_TAG
from core.results import RetrainingSummary
from core.settings import Settings
from flows.outcome import result_of
from flows.retraining import retraining
from tests.utils.collected import traffic
from training.params import GateConfig, TrainingParams
from training.schema import COLUMNS

DATA = Path(__file__).resolve().parents[2] / "data"


def land(backends: Backends, settings: Settings, *files: str) -> None:
    backends.datalake.ensure_containers(settings.landing_container)
    for file in files:
        backends.datalake.put(
            settings.landing_container, Path(file).name, (DATA / file).read_bytes()
        )


def run(backends: Backends, **kwargs: Any) -> tuple[Any, RetrainingSummary]:
    state = retraining(resources=backends, return_state=True, **kwargs)
    summary = result_of(state, RetrainingSummary)
    assert summary is not None, state
    return state, summary


def landing(backends: Backends, settings: Settings) -> list[str]:
    return [r.name for r in backends.datalake.list(settings.landing_container)]


def test_new_data_registers_the_first_model(backends: Backends, settings: Settings) -> None:
    land(backends, settings, "good/diabetes_batch_b.csv")
    state, summary = run(backends)

    assert state.is_completed(), state.message
    assert summary.outcome == "registered" and summary.version == "1"
    assert [(f.file, f.result) for f in summary.files] == [("diabetes_batch_b.csv", "merged")]
    assert summary.decision is not None and summary.decision.verdict == "register"
    assert summary.curated_rows == 442 and summary.data_fingerprint
    candidate = backends.registry.get_alias(settings.model_name, "candidate")
    assert candidate is not None and candidate.version == "1"
    assert candidate.tags["data_fingerprint"] == summary.data_fingerprint
    assert landing(backends, settings) == []  # taken, not left to be trained on again


def test_then_up_to_date_then_a_challenger_that_misses_the_gate(
    backends: Backends, settings: Settings
) -> None:
    """One landing file, three runs: registered, up to date, challenger rejected (sharing the
    first run keeps these tests in seconds: validation is the slow step)."""
    land(backends, settings, "good/diabetes_batch_b.csv")
    assert run(backends)[1].outcome == "registered"

    state, summary = run(backends)  # nothing new landed: the curated set is unchanged
    assert state.is_completed()
    assert summary.outcome == "up to date" and summary.version == "1"
    assert summary.decision is None and summary.files == ()

    backends.registry.set_alias(settings.model_name, "production", "1")
    # Other parameters (so not "up to date"), and a gate no model can pass against a champion.
    gate = GateConfig(min_improvement=10)
    state, summary = run(backends, params=TrainingParams(seed=7), gate=gate)
    assert state.is_completed()
    assert summary.outcome == "challenger rejected" and summary.version is None
    assert summary.decision is not None and summary.decision.champion_version == "1"
    assert summary.message == summary.decision.reason
    assert [v.version for v in backends.registry.list_versions(settings.model_name)] == ["1"]

    # Issue 8: the same question again (a cron run, a duplicate event) is not retrained.
    trained = len(backends.compute.submitted)  # type: ignore[attr-defined]
    state, summary = run(backends, params=TrainingParams(seed=7), gate=gate)
    assert state.is_completed()
    assert summary.outcome == "already judged" and summary.decision is not None
    assert summary.decision.verdict == "reject"
    assert len(backends.compute.submitted) == trained  # type: ignore[attr-defined]


def test_only_bad_data_is_rejected_and_quarantined(backends: Backends, settings: Settings) -> None:
    land(backends, settings, "bad/missing_column.csv")
    state, summary = run(backends)

    assert state.is_failed()
    assert summary.outcome == "data rejected" and summary.failed
    (bad,) = summary.files
    assert bad.result == "quarantined" and bad.quarantined_as
    assert state.message.startswith("1 file(s) quarantined: ")
    quarantined = [r.name for r in backends.datalake.list(settings.quarantine_container)]
    assert any(name.endswith("missing_column.csv") for name in quarantined)
    assert any(name.endswith(".reason.json") for name in quarantined)
    assert backends.registry.list_versions(settings.model_name) == []


def test_nothing_landed_and_nothing_curated_is_no_data(
    backends: Backends, settings: Settings
) -> None:
    state, summary = run(backends)
    assert state.is_completed()
    assert summary.outcome == "no data" and summary.files == ()


def test_good_and_bad_files_register_but_the_run_fails(
    backends: Backends, settings: Settings
) -> None:
    land(backends, settings, "good/diabetes_batch_b.csv", "bad/out_of_range.csv")
    state, summary = run(backends)

    assert state.is_failed()  # a quarantined file always fails the run, so someone looks
    assert summary.outcome == "registered" and summary.version == "1" and summary.failed
    assert sorted(f.result for f in summary.files) == ["merged", "quarantined"]


# --------------------------------------------------------------------------- issue 8
def test_a_blob_outside_landing_is_refused_and_left_alone(
    backends: Backends, settings: Settings
) -> None:
    """``mlops retrain --data curated/training/manifest.json`` used to quarantine (and so
    delete) the curated manifest."""
    backends.datalake.ensure_containers(settings.curated_container)
    backends.datalake.put(settings.curated_container, "training/manifest.json", b"{}")
    state = retraining(
        data_uri=f"{settings.curated_container}/training/manifest.json",
        resources=backends,
        return_state=True,
    )
    assert state.is_failed()
    assert "not in the landing container 'landing'" in str(state.result(raise_on_failure=False))
    assert backends.datalake.exists(settings.curated_container, "training/manifest.json")
    assert backends.datalake.list(settings.quarantine_container) == []


class AliasFailsOnce(LocalModelRegistry):
    """A registry whose first ``set_alias`` fails, after the version was created."""

    failed = False

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if not self.failed:
            self.failed = True
            raise BackendError("injected: alias update lost")
        super().set_alias(name, alias, version)


def test_a_retried_registration_registers_one_version(
    backends: Backends, settings: Settings, tmp_path: Path
) -> None:
    backends = replace(backends, registry=AliasFailsOnce(tmp_path / "flaky-registry"))
    land(backends, settings, "good/diabetes_batch_b.csv")
    state, summary = run(backends)

    assert state.is_completed() and summary.outcome == "registered"
    versions = backends.registry.list_versions(settings.model_name)
    assert [(v.version, v.aliases) for v in versions] == [("1", ("candidate",))]


def test_a_lost_announcement_is_sent_by_the_next_run(
    backends: Backends, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that died between registering and announcing left a version nobody releases;
    the next run ("up to date") announces it, and tags it once the server took the event."""
    sent: list[EventSpec] = []

    def server_down(specs: list[Any]) -> None:
        raise ConnectionError("injected: the events endpoint is down")

    monkeypatch.setattr(registry_tasks, "send_events", server_down)
    land(backends, settings, "good/diabetes_batch_b.csv")
    state = retraining(resources=backends, return_state=True)
    assert state.is_failed()
    (version,) = backends.registry.list_versions(settings.model_name)
    assert ANNOUNCED_TAG not in version.tags

    monkeypatch.setattr(registry_tasks, "send_events", lambda specs: sent.extend(specs))
    state, summary = run(backends)
    assert state.is_completed() and summary.outcome == "up to date"
    assert "announced it again" in summary.message
    assert [(s.event, s.payload["version"]) for s in sent] == [(MODEL_REGISTERED, "1")]
    assert backends.registry.get(settings.model_name, "1").tags[ANNOUNCED_TAG] == "true"

    state, summary = run(backends)  # announced: not again
    assert summary.outcome == "up to date" and len(sent) == 1


def test_the_suite_is_chosen_by_the_monitoring_flows_metadata_not_the_name(
    backends: Backends, settings: Settings
) -> None:
    """Labelled rows the monitoring flow wrote (``origin=labels`` and the sha256 of their
    bytes) get the ``labelled_rows`` suite, which has no row floor; a file that only looks
    like them, by name or by metadata copied onto other bytes, gets the training suite."""
    landing_ = settings.landing_container
    backends.datalake.ensure_containers(landing_)
    frame = traffic(30, seed=3, shift=1.0)[list(COLUMNS)]
    content = frame.to_csv(index=False).encode()
    other = frame.iloc[:20].to_csv(index=False).encode()
    stamp = provenance.labelled_metadata(hashlib.sha256(content).hexdigest())
    put = backends.datalake.put
    put(landing_, "labelled-day-1-0a1b2c3d.csv", content, metadata=stamp)
    put(landing_, "labelled-day-2-0a1b2c3d.csv", content)  # the name only
    put(landing_, "labelled-day-3-0a1b2c3d.csv", other, metadata=stamp)  # copied metadata

    _, summary = run(backends)
    results = {f.file: (f.result, f.details or "") for f in summary.files}
    assert results["labelled-day-1-0a1b2c3d.csv"] == ("merged", "30 rows, labelled_rows suite")
    for fake in ("labelled-day-2-0a1b2c3d.csv", "labelled-day-3-0a1b2c3d.csv"):
        result, details = results[fake]
        assert result == "quarantined", fake
        assert "of training_data failed" in details and "row_count" in details, details
    assert summary.curated_rows == 30
