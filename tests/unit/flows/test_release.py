"""Every ending of the release flow, on an in-memory target checked by a scripted probe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prefect.artifacts import Artifact

from backends.local.memory_target import InMemoryImageBuilder, InMemoryTarget
from backends.local.registry import LocalModelRegistry
from core.interfaces import BackendError, Endpoint, ModelRegistry, ReleaseSpec
from core.results import ReleaseReport
from core.settings import Settings
from core.smoke import SmokeCheck, SmokeConfig, SmokeReport
from flows.outcome import result_of
from flows.release import release
from flows.resources import ReleaseResources
from tests.utils.flow_harness import smoke_report
from training import train

DATA = Path(__file__).resolve().parents[2] / "data" / "good"


class ScriptedProbe:
    """Passes every smoke test except in the environments named in ``fail_in``; reports the
    version the endpoint was deployed with as the one served."""

    def __init__(self, *fail_in: str) -> None:
        self.fail_in = set(fail_in)
        self.tested: list[tuple[str, str]] = []

    def smoke_test(
        self, endpoint: Endpoint, golden: dict[str, Any], expected_version: str, config: SmokeConfig
    ) -> SmokeReport:
        assert golden["data"] and golden["predictions"]  # the model's own golden requests
        self.tested.append((endpoint.environment, endpoint.model_version))
        passed = endpoint.environment not in self.fail_in
        check = SmokeCheck(name="golden", passed=passed, detail="scripted", duration_ms=0.1)
        return smoke_report(endpoint, expected_version, [check])

    def served_version(self, endpoint: Endpoint) -> str:
        return endpoint.model_version


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> LocalModelRegistry:
    return LocalModelRegistry(tmp_path / "registry")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder written by the real training command (trained once per module)."""
    out = tmp_path_factory.mktemp("model") / "outputs"
    assert train.main(["--data", str(DATA / "diabetes_batch_a.csv"), "--output", str(out)]) == 0
    return out


def register(registry: ModelRegistry, settings: Settings, folder: Path) -> str:
    version = registry.register(settings.model_name, folder, "model.joblib", {})
    registry.set_alias(settings.model_name, "candidate", version.version)
    return version.version


def resources(
    registry: ModelRegistry, target: InMemoryTarget | None = None, probe: Any = None
) -> ReleaseResources:
    return ReleaseResources(
        registry=registry,
        builder=InMemoryImageBuilder(),
        target=target or InMemoryTarget(),
        probe=probe or ScriptedProbe(),
    )


def run(res: ReleaseResources, **kwargs: Any) -> tuple[Any, ReleaseReport]:
    state = release(resources=res, return_state=True, **kwargs)
    report = result_of(state, ReleaseReport)
    assert report is not None, state
    return state, report


def production(res: ReleaseResources) -> str | None:
    endpoint = res.target.current("production")
    return endpoint.model_version if endpoint else None


def stage_of(registry: ModelRegistry, settings: Settings, alias: str) -> str | None:
    found = registry.get_alias(settings.model_name, alias)
    return found.version if found else None


def test_a_candidate_is_released_then_a_rerun_is_a_no_op(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    v1 = register(registry, settings, model_folder)
    res = resources(registry)
    state, report = run(res)

    assert state.is_completed(), state.message
    assert report.outcome == "released" and not report.failed
    assert (report.production_before, report.production_after) == (None, v1)
    assert report.image and report.image.startswith(f"memory/{settings.model_name}:{v1}-")
    assert production(res) == v1 and res.target.current("qa") is None
    assert stage_of(registry, settings, "production") == v1
    assert stage_of(registry, settings, "qa") is None
    assert res.probe.tested == [("qa", v1), ("production", v1)]  # type: ignore[attr-defined]

    state, report = run(res)
    assert state.is_completed() and report.outcome == "no-op"
    assert res.target.deployed == [("qa", v1), ("production", v1)]  # type: ignore[attr-defined]


def test_production_gone_from_the_target_is_released_again(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    """The registry alone does not make a no-op: what the target runs must agree."""
    v1 = register(registry, settings, model_folder)
    res = resources(registry)
    assert run(res)[1].outcome == "released"
    res.target.teardown("production")

    state, report = run(res)
    assert state.is_completed() and report.outcome == "released" and production(res) == v1


def test_a_no_op_after_a_run_killed_past_promotion_finishes_its_cleanup(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    """A run killed after recording production and before tearing QA down leaves QA up, the
    qa alias set and no production record; the rerun is a no-op for production (it serves
    the version) but must finish that cleanup (tests/faults/flows/test_kill.py, for real)."""
    v1 = register(registry, settings, model_folder)
    res = resources(registry)
    assert run(res)[1].outcome == "released"
    spec = res.target.current_release("production")
    assert spec is not None
    res.target.deploy("qa", spec)  # what the killed run left behind
    registry.set_alias(settings.model_name, "qa", v1)
    registry.set_tags(settings.model_name, v1, {"release.status": "qa"})

    state, report = run(res)
    assert state.is_completed() and report.outcome == "no-op"
    assert res.target.current("qa") is None
    assert stage_of(registry, settings, "qa") is None
    assert registry.get(settings.model_name, v1).tags["release.status"] == "production"
    assert production(res) == v1


def test_a_candidate_failing_qa_is_rejected_and_production_keeps_serving(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    v1 = register(registry, settings, model_folder)
    target = InMemoryTarget()
    assert run(resources(registry, target))[1].outcome == "released"
    v2 = register(registry, settings, model_folder)

    state, report = run(resources(registry, target, ScriptedProbe("qa")))
    assert state.is_failed()
    assert report.outcome == "rejected in QA" and report.failed_at == "qa"
    assert report.production_after == v1 and "production unchanged" in report.message
    assert target.current("qa") is None and target.current_release("production").model_version == v1  # type: ignore[union-attr]
    assert registry.get(settings.model_name, v2).tags["release.status"] == "rejected"
    assert stage_of(registry, settings, "production") == v1


def test_a_candidate_failing_in_production_is_rolled_back(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    v1 = register(registry, settings, model_folder)
    target = InMemoryTarget()
    assert run(resources(registry, target))[1].outcome == "released"
    v2 = register(registry, settings, model_folder)

    state, report = run(resources(registry, target, ScriptedProbe("production")))
    assert state.is_failed()
    assert report.outcome == "rolled back" and report.failed_at == "production"
    assert report.production_after == v1 and f"production serves v{v1}" in report.message
    assert target.current_release("production").model_version == v1  # type: ignore[union-attr]
    assert target.current("qa") is None
    assert registry.get(settings.model_name, v2).tags["release.status"] == "rejected"
    assert stage_of(registry, settings, "production") == v1
    assert stage_of(registry, settings, "qa") is None


def test_a_first_release_failing_in_production_leaves_production_empty(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    register(registry, settings, model_folder)
    target = InMemoryTarget()
    state, report = run(resources(registry, target, ScriptedProbe("production")))
    assert state.is_failed() and report.outcome == "rolled back"
    assert report.production_after is None and "(first release)" in report.message
    assert target.current("production") is None and target.current("qa") is None


def test_a_release_not_approved_in_time_changes_nothing(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    v1 = register(registry, settings, model_folder)
    target = InMemoryTarget()
    res = resources(registry, target)
    state = release(
        resources=res, require_approval=True, approval_timeout_seconds=1, return_state=True
    )
    # The server fails a pause that expires by itself, so the run's own Failed state (with the
    # report) is refused; the report reaches the run's artifacts all the same.
    assert state.is_failed()
    published = getattr(Artifact.get("release-report"), "description", None)
    assert published is not None
    assert published.endswith("not approved (no approval within 1 s); production unchanged.")
    assert target.current("production") is None and target.current("qa") is None
    # Passing QA is not a fault: the version stays releasable.
    assert "release.status" not in registry.get(settings.model_name, v1).tags
    assert stage_of(registry, settings, "qa") is None


class DeadService(ScriptedProbe):
    """The target's records say production runs, but the service does not answer."""

    def served_version(self, endpoint: Endpoint) -> str:
        raise BackendError("connection refused")


def test_a_production_that_does_not_answer_is_no_no_op(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    v1 = register(registry, settings, model_folder)
    target = InMemoryTarget()
    assert run(resources(registry, target))[1].outcome == "released"

    state, report = run(resources(registry, target, DeadService()))
    assert state.is_completed() and report.outcome == "released"
    assert target.deployed[-1] == ("production", v1)  # deployed again, not trusted


class BrokenCleanup(InMemoryTarget):
    """Production deploys fail, and so does tearing QA down."""

    def deploy(self, environment: str, release: Any) -> Endpoint:
        if environment == "production":
            raise BackendError("production refused the deployment")
        return super().deploy(environment, release)

    def teardown(self, environment: str) -> None:
        raise BackendError(f"cannot tear {environment} down")


def test_a_failing_cleanup_is_reported_not_crashed(
    registry: LocalModelRegistry, settings: Settings, model_folder: Path
) -> None:
    v1 = register(registry, settings, model_folder)
    target = BrokenCleanup()
    state, report = run(resources(registry, target))

    assert state.is_failed() and report.outcome == "rolled back"
    assert report.reason == "production refused the deployment"
    assert report.problems and report.problems[0].startswith("tear down QA")
    assert "Cleanup problems: tear down QA" in report.message
    assert target.deployed == [("qa", v1)]  # never switched production: nothing to roll back
    assert registry.get(settings.model_name, v1).tags["release.status"] == "rejected"


def test_a_release_deploys_only_while_holding_the_models_release_lock(
    registry: LocalModelRegistry,
    settings: Settings,
    model_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ``mlops release`` run in its own process bypasses the deployment's concurrency
    limit: the flow itself must hold the model's release lock (tasks/locks.py) around every
    change it makes, so a CLI release and a triggered one cannot overlap."""
    import flows.release as release_module

    held: list[tuple[str, str]] = []

    @contextmanager
    def recording_lock(name: str, purpose: str = "retraining") -> Iterator[None]:
        held.append((name, purpose))
        yield
        held.pop()

    class LockCheckingTarget(InMemoryTarget):
        def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
            assert held == [(settings.model_name, "release")], "deployed without the lock"
            return super().deploy(environment, release)

    monkeypatch.setattr(release_module, "model_lock", recording_lock)
    v1 = register(registry, settings, model_folder)
    res = resources(registry, LockCheckingTarget())
    state, report = run(res)
    assert state.is_completed(), state.message
    assert production(res) == v1 and not held
