"""The release flow on a real Prefect server with real scoring services (processes, and Docker
containers when an engine runs): QA, smoke test, promotion, QA rejection, production rollback."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends import get_backends, get_release_backends
from core.interfaces import DeploymentTarget, Endpoint, ModelRegistry, ReleaseSpec
from core.results import ReleaseReport, RetrainingSummary
from core.settings import Settings
from flows.outcome import result_of
from flows.release import release
from flows.resources import ReleaseResources
from flows.retraining import retraining
from tests.utils.flow_harness import ReleaseSettings
from training.artifacts import MODEL_FILE, RUN_FILE

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(params=["process", "docker"])
def release_settings(request: pytest.FixtureRequest, release_to: ReleaseSettings) -> Settings:
    """Settings with free QA/production ports and the release target under test."""
    if request.param == "docker":
        return release_to("docker", MLOPS_DOCKER_HOST=request.getfixturevalue("docker_host"))
    return release_to("process")


def train_version(settings: Settings, file: str) -> str:
    lake = get_backends(settings).datalake
    lake.ensure_containers(settings.landing_container)
    ref = lake.put(settings.landing_container, file, (DATA / "good" / file).read_bytes())
    state = retraining(data_uri=ref.uri, return_state=True)
    assert state.is_completed(), state.message
    summary = result_of(state, RetrainingSummary)
    assert summary is not None and summary.version is not None
    return summary.version


def run(**kwargs: Any) -> tuple[Any, ReleaseReport]:
    state = release(**kwargs, return_state=True)
    report = result_of(state, ReleaseReport)
    assert report is not None, state
    return state, report


def score(endpoint: Endpoint) -> dict[str, Any]:
    golden = [[0.01] * 10]
    response = httpx.post(
        f"{endpoint.url}/score",
        json={"data": golden},
        headers={"Authorization": f"Bearer {endpoint.key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def register_copy(
    registry: ModelRegistry, settings: Settings, source: str, edit: dict[str, Any]
) -> str:
    """Register a copy of version ``source`` with ``run.json`` changed, as the new candidate."""
    tmp = settings.state_path / "broken"
    folder = registry.download(settings.model_name, source, tmp)
    run_json = json.loads((folder / RUN_FILE).read_text())
    run_json["versions"] |= edit
    (folder / RUN_FILE).write_text(json.dumps(run_json))
    version = registry.register(settings.model_name, folder, MODEL_FILE, {"note": "broken"})
    registry.set_alias(settings.model_name, "candidate", version.version)
    shutil.rmtree(tmp)
    return version.version


def test_release_promotes_through_qa_and_is_idempotent(release_settings: Settings) -> None:
    registry = get_backends(release_settings).registry
    target = get_release_backends(release_settings).target
    v1 = train_version(release_settings, "diabetes_batch_b.csv")

    state, report = run()
    assert state.is_completed(), state.message
    assert report.outcome == "released" and report.production_after == v1
    assert "production" in registry.get(release_settings.model_name, v1).aliases
    production = target.current("production")
    assert production is not None and production.model_version == v1
    assert score(production)["model"]["version"] == v1
    assert target.current("qa") is None  # QA torn down after promotion
    assert report.smoke_qa is not None and report.smoke_production is not None

    state, report = run()
    assert state.is_completed() and report.outcome == "no-op"


def test_broken_candidate_is_rejected_in_qa_and_production_keeps_serving(
    release_settings: Settings,
) -> None:
    registry = get_backends(release_settings).registry
    target = get_release_backends(release_settings).target
    v1 = train_version(release_settings, "diabetes_batch_b.csv")
    assert run()[0].is_completed()

    # Trained with another scikit-learn: the build (Docker) or the service (process) refuses.
    v2 = register_copy(registry, release_settings, v1, {"scikit-learn": "1.0.2"})
    state, report = run()
    assert state.is_failed()
    assert report.outcome == "rejected in QA"
    assert "production unchanged" in state.message
    assert registry.get(release_settings.model_name, v2).tags["release.status"] == "rejected"
    assert registry.get_alias(release_settings.model_name, "production").version == v1  # type: ignore[union-attr]
    assert target.current("qa") is None
    production = target.current("production")
    assert production is not None and score(production)["model"]["version"] == v1


class FailsInProduction:
    """A real target whose production deploys serve the wrong version label: the release
    passes QA and then fails the production smoke test."""

    def __init__(self, inner: DeploymentTarget) -> None:
        self.inner = inner

    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        if environment == "production":
            release = dataclasses.replace(release, model_version=release.model_version + "-bad")
        return self.inner.deploy(environment, release)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_candidate_failing_in_production_is_rolled_back(release_settings: Settings) -> None:
    registry = get_backends(release_settings).registry
    target = get_release_backends(release_settings).target
    v1 = train_version(release_settings, "diabetes_batch_a.csv")
    assert run()[0].is_completed()
    v2 = train_version(release_settings, "diabetes_batch_b.csv")

    real = get_release_backends(release_settings)
    failing = ReleaseResources(registry, real.builder, FailsInProduction(real.target))
    state, report = run(version=v2, resources=failing)
    assert state.is_failed()
    assert report.outcome == "rolled back" and report.production_after == v1
    assert f"serves v{v1}" in state.message
    assert registry.get_alias(release_settings.model_name, "production").version == v1  # type: ignore[union-attr]
    assert registry.get(release_settings.model_name, v2).tags["release.status"] == "rejected"
    production = target.current("production")
    assert production is not None and score(production)["model"]["version"] == v1


def test_a_release_not_approved_in_time_leaves_production_as_it_was(
    release_to: ReleaseSettings,
) -> None:
    current = release_to("process", smoke_requests=20)
    target = get_release_backends(current).target
    train_version(current, "diabetes_batch_b.csv")
    # The server fails a run whose pause expired; the flow still tears QA down first.
    # (So the run returns no report: the server refuses the run's own final state.)
    state = release(require_approval=True, approval_timeout_seconds=2, return_state=True)
    assert state.is_failed()
    assert target.current("qa") is None and target.current("production") is None
    assert get_backends(current).registry.get_alias(current.model_name, "production") is None
