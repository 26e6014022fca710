"""backends.local.haproxy against a real HAProxy: start and stop by PID, the runtime API
(add, health checks, switch, drain, delete), Prometheus metrics, start-up errors.

Replicas are the stdlib stand-in service (``standin_service.py``).
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backends.local import daemons, haproxy
from backends.local.envstate import EnvFiles, free_port, http_ok

pytestmark = pytest.mark.integration
STANDIN = Path(__file__).with_name("standin_service.py")
KEY = "test-key"


@pytest.fixture
def files(tmp_path: Path) -> EnvFiles:
    return EnvFiles(tmp_path / "env", "production", free_port())


@pytest.fixture
def running(files: EnvFiles) -> Iterator[tuple[haproxy.Runtime, dict]]:
    state: dict = {"proxy": None}
    api = haproxy.ensure(files, state, haproxy.find_binary())
    yield api, state
    haproxy.stop(files, state)


Start = Callable[..., int]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """``start("2a")`` runs a healthy stand-in of version 2 and returns its port;
    ``flag="UNHEALTHY"`` makes one that never is."""
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}

    def run(name: str, flag: str = "") -> int:
        folder = tmp_path / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        if flag:
            (folder / flag).touch()
        port = free_port(set(ports.values()))
        env = {
            **os.environ,
            "SCORING_PORT": str(port),
            "SCORING_MODEL_DIR": str(folder),
            "SCORING_MODEL_VERSION": name[0],
            "SCORING_API_KEY": KEY,
        }
        procs.append(subprocess.Popen([sys.executable, str(STANDIN)], env=env))
        ports[name] = port
        deadline = time.monotonic() + 10
        while not flag and not http_ok(f"http://127.0.0.1:{port}/"):
            assert time.monotonic() < deadline, f"stand-in {name} never got healthy"
            time.sleep(0.05)
        return port

    yield run
    for proc in procs:
        proc.kill()
        proc.wait()


def _version(url: str) -> str:
    response = httpx.post(
        url + "/score", json={"data": [[0.0]]}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["model"]["version"])


def test_starts_by_pid_serves_metrics_and_stops(files: EnvFiles, tmp_path: Path) -> None:
    state: dict = {"proxy": None}
    api = haproxy.ensure(files, state, haproxy.find_binary())
    proxy = state["proxy"]
    assert api.pid() == proxy["pid"] and daemons.alive(proxy) and proxy["port"] == files.port
    config = files.dir / "haproxy.cfg"
    check = subprocess.run([haproxy.find_binary(), "-c", "-f", str(config)], capture_output=True)
    assert check.returncode == 0, check.stderr
    # No replica yet: the stable URL answers, with 503.
    assert httpx.get(files.url + "/").status_code == 503
    metrics = httpx.get(f"http://127.0.0.1:{proxy['metrics_port']}/metrics")
    assert metrics.status_code == 200 and "haproxy_process_nbthread" in metrics.text
    assert httpx.get(f"http://127.0.0.1:{proxy['metrics_port']}/").status_code == 404
    # A second ensure finds it running and keeps it.
    assert haproxy.ensure(files, state, haproxy.find_binary()).pid() == proxy["pid"]

    haproxy.stop(files, state)
    assert state["proxy"] is None and not daemons.alive(proxy)
    assert not config.exists() and api.pid() is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(files.url + "/")


def test_a_taken_port_fails_with_haproxys_words(files: EnvFiles) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", files.port))
        blocker.listen()
        with pytest.raises(haproxy.HAProxyError, match=r"(?s)did not start.*cannot bind"):
            haproxy.ensure(files, {"proxy": None}, haproxy.find_binary())


def test_missing_binary_says_how_to_install() -> None:
    with pytest.raises(haproxy.HAProxyError, match="make setup"):
        haproxy.find_binary("no-such-haproxy")


def test_add_switch_drain_and_delete_through_the_runtime_api(
    running: tuple[haproxy.Runtime, dict], start: Start, files: EnvFiles
) -> None:
    api, _ = running
    assert api.active() == "blue"
    old = [start("1a"), start("1b")]
    for port in old:
        api.add("blue", "127.0.0.1", port)
    api.wait_up(old, timeout=10)
    assert {_version(files.url) for _ in range(4)} == {"1"}

    new = [start("2a"), start("2b")]
    for port in new:
        api.add("green", "127.0.0.1", port)
    api.wait_up(new, timeout=10)
    assert _version(files.url) == "1"  # added is not serving: the switch decides
    api.switch("green")
    assert api.active() == "green"
    assert {_version(files.url) for _ in range(4)} == {"2"}
    assert api.wait_idle("blue", timeout=5)

    for port in old:
        api.drain(port)
        assert api.remove(port, timeout=10)
    assert sorted(api.servers()) == sorted(new)
    assert {s.backend for s in api.servers().values()} == {"green"}


def _connections(api: haproxy.Runtime) -> tuple[int, int]:
    """Connections HAProxy opened to the replicas, and requests it sent over idle ones."""
    rows = csv.DictReader(io.StringIO(api.command("show stat")[2:]))
    servers = [r for r in rows if r["pxname"] in haproxy.BACKENDS and r["svname"] != "BACKEND"]
    return sum(int(r["connect"] or 0) for r in servers), sum(int(r["reuse"] or 0) for r in servers)


def test_requests_reuse_the_connections_to_the_replicas(
    running: tuple[haproxy.Runtime, dict], start: Start, files: EnvFiles
) -> None:
    # Without pool-max-conn a dynamic server keeps no idle connection: every request opened
    # (and closed) one to a replica, which doubled what a request cost it.
    api, _ = running
    ports = [start("1a"), start("1b")]
    for port in ports:
        api.add("blue", "127.0.0.1", port)
    api.wait_up(ports, timeout=10)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=files.url, headers=headers) as client:  # one keep-alive conn
        for _ in range(40):
            assert client.post("/score", json={"data": [[0.0]]}).status_code == 200
    connects, reuses = _connections(api)
    assert connects <= 4 and reuses >= 36, (connects, reuses)
    for port in ports:  # pooled idle connections do not keep a replica from going
        api.drain(port)
        assert api.remove(port, timeout=10)
    assert api.servers() == {}


def test_an_unhealthy_replica_is_never_seen_up(
    running: tuple[haproxy.Runtime, dict], start: Start
) -> None:
    api, _ = running
    port = start("1a", flag="UNHEALTHY")
    api.add("green", "127.0.0.1", port)
    with pytest.raises(haproxy.HAProxyError, match=rf"r{port}|{port}"):
        api.wait_up([port], timeout=2)
    api.prune([], timeout=5)  # what a crashed deploy left behind goes
    assert api.servers() == {}


def test_a_long_state_path_gets_a_short_socket(tmp_path: Path) -> None:
    # Just one byte too long for HAProxy (97), as under pytest's or a user's deep folders.
    pad = max(1, haproxy.MAX_SOCKET_PATH - len(str(tmp_path.resolve() / "env" / "haproxy.sock")))
    deep = EnvFiles(tmp_path / "env" / ("x" * pad), "qa", free_port())
    path = haproxy.runtime(deep).socket_path
    assert len(str(path)) <= haproxy.MAX_SOCKET_PATH and path.parent != deep.dir.resolve()
    assert haproxy.runtime(deep).socket_path == path  # stable: a CLI finds it again
    state: dict = {"proxy": None}
    try:
        assert haproxy.ensure(deep, state, haproxy.find_binary()).pid() == state["proxy"]["pid"]
    finally:
        haproxy.stop(deep, state)
    assert not path.exists()
