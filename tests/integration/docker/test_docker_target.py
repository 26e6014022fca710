"""DockerTarget on a real engine with real scoring images: QA and production behind the
HAProxy, rolling replacement and rollback at saturation (zero failed requests), a bad image
that is never switched in, teardown (stray containers included), shared state.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import docker
import pytest

from backends.local.docker_image import DockerImageBuilder
from backends.local.docker_target import DockerTarget
from backends.local.envstate import free_port
from backends.local.rolling import ReleaseHealthError
from core.interfaces import ReleaseSpec
from training.artifacts import sha256_file

pytestmark = pytest.mark.docker
logger = logging.getLogger(__name__)


def _helpers() -> ModuleType:
    if "rollout_helpers" not in sys.modules:
        path = Path(__file__).parents[1] / "backends" / "rollout.py"
        spec = importlib.util.spec_from_file_location("rollout_helpers", path)
        assert spec and spec.loader
        sys.modules["rollout_helpers"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["rollout_helpers"]


rollout = _helpers()


@pytest.fixture(scope="module")
def releases(
    docker_host: str, cache_dir: Path, model_dir: Path, docker_client: docker.DockerClient
) -> Iterator[dict[str, ReleaseSpec]]:
    """Scoring images for versions 1 and 2 (fresh tags, removed afterwards)."""
    builder = DockerImageBuilder(docker_host, cache_dir)
    code_version = uuid.uuid4().hex[:12]
    sha = sha256_file(model_dir / "model.joblib")
    specs = {
        v: ReleaseSpec(
            "diabetes-ridge",
            v,
            sha,
            image=builder.build("diabetes-ridge", v, model_dir, code_version),
        )
        for v in ("1", "2")
    }
    yield specs
    for spec in specs.values():
        docker_client.images.remove(spec.image, force=True)


@pytest.fixture
def ports() -> dict[str, int]:
    qa = free_port()
    return {"qa": qa, "production": free_port({qa})}


def _target(docker_host: str, tmp_path: Path, ports: dict[str, int]) -> DockerTarget:
    def factory() -> docker.DockerClient:
        return docker.DockerClient(base_url=docker_host, timeout=120)

    return DockerTarget(factory, tmp_path / "state", ports, health_timeout=90.0)


@pytest.fixture
def target(docker_host: str, tmp_path: Path, ports: dict[str, int]) -> Iterator[DockerTarget]:
    target = _target(docker_host, tmp_path, ports)
    yield target
    with contextlib.ExitStack() as stack:  # every environment, even if one teardown fails
        for environment in ports:
            stack.callback(target.teardown, environment)
    assert target.containers() == []
    assert rollout.pids_mentioning(str(tmp_path)) == []  # the HAProxy processes


def assert_own_cgroups(docker_client: docker.DockerClient, containers: list) -> None:
    """On cgroup v1 with the cgroupfs driver each replica is a top-level CPU cgroup of its own
    (``/<container id>``), not one of the engine's ``docker`` group sharing ONE weight;
    elsewhere it is where the engine puts it."""
    info = docker_client.info()
    if (info.get("CgroupVersion"), info["CgroupDriver"]) != ("1", "cgroupfs"):
        for container in containers:
            assert (
                "CgroupParent" not in container.attrs["HostConfig"]
                or not (container.attrs["HostConfig"]["CgroupParent"])
            )
        return
    for container in containers:
        pid = container.attrs["State"]["Pid"]
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        cpu = next(
            line.split(":", 2)[2] for line in lines if "cpu" in line.split(":")[1].split(",")
        )
        assert cpu == f"/{container.id}", lines


def test_releases_roll_forward_and_back_without_a_failed_request(
    target: DockerTarget, releases: dict[str, ReleaseSpec], docker_client: docker.DockerClient
) -> None:
    qa = target.deploy("qa", releases["1"])
    assert target.health("qa") and len(target.containers("qa")) == 1
    production = target.deploy("production", releases["1"])
    containers = target.containers("production")
    assert len(containers) == 2 and target.health("production")
    attrs = containers[0].attrs
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert containers[0].labels["mlops.environment"] == "production"
    assert containers[0].labels["mlops.version"] == "1"
    assert qa.key != production.key  # one key per environment
    assert_own_cgroups(docker_client, containers)
    # The key is a read-only file in the container: not in `docker inspect`, env or logs.
    for container in target.containers():
        assert production.key not in json.dumps(container.attrs)
        assert qa.key not in json.dumps(container.attrs)
        env = container.attrs["Config"]["Env"]
        assert "SCORING_API_KEY_FILE=/run/secrets/scoring_api_key" in env
        assert not any(item.startswith("SCORING_API_KEY=") for item in env)
        mounts = container.attrs["Mounts"]
        assert [(m["Destination"], m["RW"]) for m in mounts] == [
            ("/run/secrets/scoring_api_key", False)
        ]
        assert production.key.encode() not in container.logs()

    with rollout.LoadGenerator(production.url, production.key) as forward:
        target.deploy("production", releases["2"])
    logger.info(
        "docker v1 -> v2 at saturation: %d requests (%.0f/s), %d failed",
        forward.total, forward.rate, len(forward.failures),
    )  # fmt: skip
    assert forward.failures == [] and forward.switched_once("1", "2")
    assert {c.labels["mlops.version"] for c in target.containers("production")} == {"2"}

    with rollout.LoadGenerator(production.url, production.key) as back:
        target.rollback("production")
    logger.info(
        "docker rollback at saturation: %d requests (%.0f/s), %d failed",
        back.total, back.rate, len(back.failures),
    )  # fmt: skip
    assert back.failures == [] and back.switched_once("2", "1")
    assert target.previous("production") == releases["2"]


def test_an_image_with_the_wrong_model_is_not_switched_in(
    target: DockerTarget, releases: dict[str, ReleaseSpec]
) -> None:
    endpoint = target.deploy("production", releases["1"])
    # The registry says another sha256: the service refuses the baked model and exits.
    wrong = ReleaseSpec("diabetes-ridge", "2", "f" * 64, image=releases["2"].image)
    with rollout.LoadGenerator(endpoint.url, endpoint.key) as load:
        with pytest.raises(ReleaseHealthError, match=r"(?s)exited.*sha256"):
            target.deploy("production", wrong)
    assert load.failures == [] and load.versions() == {"1"}
    assert {c.labels["mlops.version"] for c in target.containers("production")} == {"1"}


def test_state_is_shared_and_teardown_removes_strays(
    target: DockerTarget,
    releases: dict[str, ReleaseSpec],
    docker_host: str,
    tmp_path: Path,
    ports: dict[str, int],
    docker_client: docker.DockerClient,
) -> None:
    endpoint = target.deploy("qa", releases["1"])
    # A container started by a deployer that died before recording it.
    docker_client.containers.create(
        releases["1"].image, labels={"mlops.stack": target.stack, "mlops.environment": "qa"}
    )
    other = _target(docker_host, tmp_path, ports)
    assert other.current("qa") == endpoint and other.health("qa")
    other.teardown("qa")
    assert target.current("qa") is None and target.containers("qa") == []
