"""DockerEngine without a real dockerd: socket placement, and failing starts explained."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backends.local import dockerd as dockerd_module
from backends.local.dockerd import DockerEngine, DockerEngineError


def test_short_root_keeps_sockets_under_it() -> None:
    engine = DockerEngine(Path("/srv/mlops/docker"))  # nothing is created before ensure()
    assert engine.run_dir == Path("/srv/mlops/docker/run")
    assert engine.docker_host == f"unix://{engine.run_dir}/docker.sock"


def test_deep_root_moves_sockets_to_a_short_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    engine = DockerEngine(deep)
    assert not engine.run_dir.is_relative_to(tmp_path)
    assert len(str(engine.socket_path)) < 108
    assert engine.run_dir == DockerEngine(deep).run_dir  # stable for one root
    assert engine.run_dir != DockerEngine(deep / "x").run_dir


def test_command_has_the_no_network_flags(tmp_path: Path) -> None:
    command = DockerEngine(tmp_path)._command("dockerd")
    for flag in ("--bridge=none", "--iptables=false", "--ip-masq=false"):
        assert flag in command
    assert "--storage-driver=overlay2" in command
    assert f"--data-root={tmp_path.resolve() / 'data'}" in command


def test_nothing_to_stop(tmp_path: Path) -> None:
    engine = DockerEngine(tmp_path, candidates=[])
    assert engine.pid() is None
    assert not engine.is_running()
    assert engine.stop() is False


def test_missing_dockerd_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dockerd_module.shutil, "which", lambda name: None)
    with pytest.raises(DockerEngineError, match="apt-get install docker.io"):
        DockerEngine(tmp_path, candidates=["unix:///nonexistent.sock"]).ensure()


def _fake_dockerd(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "bin" / "dockerd"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


def test_a_daemon_that_exits_reports_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_dockerd(tmp_path, "echo 'failed to start: no storage driver'\nexit 1\n", monkeypatch)
    engine = DockerEngine(tmp_path / "engine", candidates=[])
    with pytest.raises(DockerEngineError, match="exited with code 1") as info:
        engine.ensure()
    assert "no storage driver" in str(info.value)


def test_a_daemon_that_never_answers_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_dockerd(tmp_path, "echo 'waiting forever'\nexec sleep 60\n", monkeypatch)
    engine = DockerEngine(tmp_path / "engine", candidates=[], start_timeout=1.0)
    with pytest.raises(DockerEngineError, match="did not answer within 1 s") as info:
        engine.ensure()
    assert "waiting forever" in str(info.value)
    assert engine._proc is None  # stopped, not left behind
