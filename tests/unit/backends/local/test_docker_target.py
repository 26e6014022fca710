"""DockerTarget's run options without an engine: which cgroup a replica gets, per engine setup.

The real engine is tested in ``tests/integration/docker/test_docker_target.py`` (a deployed
replica's own cgroup, read from ``/proc``); here ``docker info``'s answer is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends.local.docker_target import (
    APPINSIGHTS_PATH,
    SECRET_PATH,
    DockerTarget,
    replica_cgroup_parent,
)
from core.interfaces import BackendError, ReleaseSpec


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"CgroupVersion": "1", "CgroupDriver": "cgroupfs"}, "/"),
        ({"CgroupDriver": "cgroupfs"}, "/"),  # engines before 20.10 report no version: v1
        ({"CgroupVersion": "1", "CgroupDriver": "systemd"}, None),  # a scope per container
        ({"CgroupVersion": "2", "CgroupDriver": "systemd"}, None),
        ({"CgroupVersion": "2", "CgroupDriver": "cgroupfs"}, None),  # not measured: as is
        ({"CgroupVersion": "1", "CgroupDriver": "none"}, None),  # rootless: no cgroups
    ],
)
def test_a_replica_gets_its_own_cgroup_only_where_the_engine_shares_one(
    info: dict[str, str], expected: str | None
) -> None:
    assert replica_cgroup_parent(info) == expected


class Engine:
    """Answers ``docker info`` (and counts how often it was asked)."""

    def __init__(self, info: dict[str, str] | Exception) -> None:
        self._info, self.asked = info, 0

    def info(self) -> dict[str, str]:
        self.asked += 1
        if isinstance(self._info, Exception):
            raise self._info
        return self._info


RELEASE = ReleaseSpec("diabetes-ridge", "3", "a" * 64, image="mlops/diabetes-ridge:3")


def _options(tmp_path: Path, engine: Engine, times: int = 1) -> list[dict[str, Any]]:
    target = DockerTarget(lambda: engine, tmp_path, {"production": 8700})
    return [target.run_options("production", RELEASE, 40000 + i, "key") for i in range(times)]


def test_run_options_on_cgroup_v1_cgroupfs_name_a_top_level_cgroup(tmp_path: Path) -> None:
    engine = Engine({"CgroupVersion": "1", "CgroupDriver": "cgroupfs"})
    options = _options(tmp_path, engine, times=3)
    assert [o["cgroup_parent"] for o in options] == ["/"] * 3
    assert engine.asked == 1  # once per target, not per replica


def test_run_options_elsewhere_leave_the_engines_default(tmp_path: Path) -> None:
    (options,) = _options(tmp_path, Engine({"CgroupVersion": "2", "CgroupDriver": "systemd"}))
    assert "cgroup_parent" not in options
    assert options["network_mode"] == "host" and options["image"] == RELEASE.image


def test_an_engine_that_does_not_answer_is_a_backend_error(tmp_path: Path) -> None:
    from docker.errors import DockerException

    with pytest.raises(BackendError, match="cgroup"):
        _options(tmp_path, Engine(DockerException("engine gone")))


def test_the_telemetry_connection_string_is_a_mounted_file_not_a_variable(
    tmp_path: Path,
) -> None:
    secret = "InstrumentationKey=0000;IngestionEndpoint=http://127.0.0.1:1/"
    engine = Engine({"CgroupVersion": "2", "CgroupDriver": "systemd"})
    target = DockerTarget(
        lambda: engine, tmp_path, {"production": 8700}, appinsights_connection_string=secret
    )
    options = target.run_options("production", RELEASE, 40000, "key")
    env = options["environment"]
    assert env["SCORING_APPINSIGHTS_CONNECTION_STRING_FILE"] == APPINSIGHTS_PATH
    assert secret not in str(env) and "SCORING_APPINSIGHTS_CONNECTION_STRING" not in env
    [mount] = [m for m in options["mounts"] if m["Target"] == APPINSIGHTS_PATH]
    assert mount["ReadOnly"] and Path(mount["Source"]).read_text() == secret
    # Without a connection string nothing about telemetry reaches the replica.
    plain = DockerTarget(lambda: engine, tmp_path / "plain", {"production": 8700})
    options = plain.run_options("production", RELEASE, 40000, "key")
    assert not any("APPINSIGHTS" in name for name in options["environment"])
    assert [m["Target"] for m in options["mounts"]] == [SECRET_PATH]
