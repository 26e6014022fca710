"""``mlops down`` remembers what QA and production ran; ``mlops up`` brings back what the
registry still records, and says how when it cannot."""

from __future__ import annotations

from pathlib import Path

from backends.local.memory_target import InMemoryTarget
from core.interfaces import BackendError, Endpoint, ModelVersion, ReleaseSpec
from mlops.environments import remember, restore

NAME = "diabetes-ridge"


class Registry:
    """The two calls ``restore`` makes of a registry: which version each stage points at."""

    def __init__(self, **stages: str) -> None:
        self.stages = stages

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        version = self.stages.get(alias)
        return None if version is None else ModelVersion(name, version, "file:///m", "0" * 64)


def spec(version: str) -> ReleaseSpec:
    return ReleaseSpec(NAME, version, "0" * 64, image=f"mlops/{NAME}:{version}")


def down(target: InMemoryTarget, folder: Path) -> None:
    remember(target, folder)
    for environment in ("qa", "production"):
        target.teardown(environment)


def test_up_after_down_serves_what_the_registry_records(tmp_path: Path) -> None:
    target = InMemoryTarget()
    target.deploy("qa", spec("3"))
    target.deploy("production", spec("2"))
    down(target, tmp_path)
    assert target.current("production") is None

    lines = restore(target, Registry(qa="3", production="2"), NAME, tmp_path)

    assert target.current_release("production") == spec("2")
    assert target.current_release("qa") == spec("3")
    assert lines == [
        "qa              v3 restored at memory://qa",
        "production      v2 restored at memory://production",
    ]
    assert list(tmp_path.iterdir()) == []  # records are dropped once restored
    assert restore(target, Registry(qa="3", production="2"), NAME, tmp_path) == []  # idempotent


def test_a_stage_the_registry_moved_on_is_not_restored_but_explained(tmp_path: Path) -> None:
    target = InMemoryTarget()
    target.deploy("production", spec("2"))
    down(target, tmp_path)

    lines = restore(target, Registry(production="4"), NAME, tmp_path)

    assert target.current("production") is None and target.deployed == [("production", "2")]
    assert lines == [
        "production      v4 is not served: run `mlops release --version 4` to serve it again"
    ]


def test_a_release_that_cannot_run_any_more_is_explained(tmp_path: Path) -> None:
    class Broken(InMemoryTarget):
        def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
            raise BackendError("image mlops/diabetes-ridge:2 not found")

    target = Broken()
    target.releases["production"] = [spec("2")]
    down(target, tmp_path)

    (line,) = restore(target, Registry(production="2"), NAME, tmp_path)
    assert "image mlops/diabetes-ridge:2 not found" in line
    assert "`mlops release --version 2`" in line
