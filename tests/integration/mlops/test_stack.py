"""``mlops up`` (twice: idempotent) and ``mlops down`` on a real Azurite and Prefect server.

The stack is the session's ``local_stack`` (see ``conftest.py``): free ports, its own state
folder, release target ``process`` (no Docker engine).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from backends.local._proc import pid_alive, port_answers
from backends.local.managed import group_alive
from mlops.services import http_ok

pytestmark = pytest.mark.integration

SERVICES = ("azurite", "prefect-server", "notify", "data-docs", "prometheus", "prefect-worker")


def output(result: Any) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_up_starts_every_service_and_seeds_landing(stack: Any) -> None:
    first = stack.first_up
    assert first is not None and first.returncode == 0, output(first)
    pids = stack.pids()
    assert set(pids) == set(SERVICES)
    for name in SERVICES:
        assert f"{name:15} running (pid {pids[name]}, log {stack.run_dir / name}.log)" in (
            first.stdout
        )
    assert "seeded the landing container with the diabetes data:" in first.stdout
    assert stack.landing_after_first_up == ["diabetes-seed.csv"]
    assert f"Prefect UI: http://127.0.0.1:{stack.prefect_port}" in first.stdout
    assert f"Prometheus: http://127.0.0.1:{stack.prometheus_port}" in first.stdout
    assert "release target" not in first.stdout  # `process`: no engine looked for
    # Each answers where the settings say, bound to loopback only.
    assert http_ok(f"{stack.settings.prefect_api_url}/health")
    assert port_answers("127.0.0.1", stack.azurite_port)
    assert http_ok(f"http://127.0.0.1:{stack.notify_port}/health")
    assert http_ok(f"http://127.0.0.1:{stack.worker_port}/health")
    assert http_ok(f"http://127.0.0.1:{stack.prometheus_port}/-/ready")


def test_up_again_changes_nothing(stack: Any) -> None:
    before = stack.pids()
    again = stack.mlops("up")
    assert again.returncode == 0, output(again)
    assert stack.pids() == before
    for name in SERVICES:
        assert f"{name:15} running (pid {before[name]}," in again.stdout
    assert "seeded" not in again.stdout  # the lake is seeded once


def test_a_port_held_by_another_program_fails_clearly(stack: Any) -> None:
    # Same project, but Prefect's port is taken by something that is not our server.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        before = stack.pids()
        result = stack.mlops("up", timeout=120, MLOPS_PREFECT_PORT=str(port))
    assert result.returncode == 1, output(result)
    assert f"port 127.0.0.1:{port} is already in use by another program" in result.stderr
    assert "MLOPS_PREFECT_PORT" in result.stderr
    assert stack.pids() == before  # the running stack is untouched and still found
    assert http_ok(f"{stack.settings.prefect_api_url}/health")


def test_down_stops_everything(stack: Any) -> None:
    pids = stack.pids()
    assert set(pids) == set(SERVICES)

    result = stack.mlops("down", timeout=120)
    stack.down = True

    assert result.returncode == 0, output(result)
    for name in SERVICES:
        assert f"{name:15} stopped" in result.stdout
    for name, pid in pids.items():
        assert not pid_alive(pid), f"{name} (pid {pid}) still runs"
        assert not group_alive(pid), f"a process of {name}'s group (pid {pid}) still runs"
    assert stack.pids() == {}
    assert not port_answers("127.0.0.1", stack.azurite_port)
    assert not port_answers("127.0.0.1", stack.prefect_port)

    again = stack.mlops("down", timeout=120)
    assert again.returncode == 0, output(again)
    for name in SERVICES:
        assert f"{name:15} was not running" in again.stdout
