"""A dockerd of our own: started under a given folder, answering, stopped by PID."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from backends.local._proc import pid_alive
from backends.local.dockerd import DockerEngine, engine_answers

pytestmark = pytest.mark.docker


def test_start_answer_and_stop_a_private_engine(docker_host: str) -> None:
    # docker_host proves dockerd can run here; this one is private and short-lived.
    with tempfile.TemporaryDirectory(prefix="mlops-eng-") as root:
        engine = DockerEngine(Path(root), candidates=[], start_timeout=60)
        host = engine.ensure()
        try:
            assert engine.started and host == engine.docker_host
            assert engine.is_running() and engine_answers(host)
            pid = engine.pid()
            assert pid is not None
            assert engine.ensure() == host  # idempotent: no second daemon
            assert engine.pid() == pid
        finally:
            assert engine.stop() is True
        assert not pid_alive(pid)
        assert not engine.is_running()
        assert not engine_answers(host, timeout=1)
        assert engine.stop() is False


def test_session_engine_answers(docker_host: str) -> None:
    assert engine_answers(docker_host)
