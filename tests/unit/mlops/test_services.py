"""ManagedProcess: a background service found again by its PID file, on a tiny HTTP server.

The service is a small Python program on a free loopback port; every test stops what it
started (the ``services`` fixture stops the rest, even after a failure).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.local._proc import pid_alive
from backends.local.managed import group_alive
from mlops.services import ManagedProcess, ServiceError, http_ok
from tests.utils.net import free_port

# argv: <port> <mode>. Modes: serve; child (also starts a child in its group that ignores
# SIGTERM); exit (fails at once); slow (never listens); env (logs two variables, then serves).
SERVICE = textwrap.dedent(
    """
    import http.server, os, signal, subprocess, sys, time
    port, mode = int(sys.argv[1]), sys.argv[2]
    print("service", os.getpid(), "mode", mode, flush=True)
    if mode == "exit":
        print("boom: cannot open the database", flush=True)
        sys.exit(3)
    if mode == "slow":
        time.sleep(600)
    if mode == "child":
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        child = subprocess.Popen([sys.executable, "-c", code])
        print("child", child.pid, flush=True)
    if mode == "env":
        print("env", os.environ.get("SERVICE_FLAG"), os.environ.get("AZURE_CLIENT_SECRET"))
    handler = http.server.SimpleHTTPRequestHandler
    http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
    """
)


Factory = Callable[..., ManagedProcess]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Factory]:
    """Builds services (``mode``, ``port``, ``name``) in one run folder; stops them all after."""
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    made: list[ManagedProcess] = []

    def make(mode: str = "serve", port: int | None = None, name: str = "web") -> ManagedProcess:
        port = port or free_port()
        service = ManagedProcess(
            name,
            [sys.executable, str(script), str(port), mode],
            tmp_path / "run",
            host="127.0.0.1",
            port=port,
            ready=lambda: http_ok(f"http://127.0.0.1:{port}/"),
            env={"SERVICE_FLAG": "on"},
            port_setting="MLOPS_WEB_PORT",
            hint="install it first",
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop(timeout=2)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def logged_pid(service: ManagedProcess, word: str) -> int:
    for line in service.log_file.read_text().splitlines():
        if line.startswith(word + " "):
            return int(line.split()[1])
    raise AssertionError(f"no {word!r} line in {service.log_file}")


def test_start_waits_until_ready(services: Factory) -> None:
    service = services()
    pid = service.start(timeout=20)
    assert service.ready() and service.is_running() and service.pid() == pid
    assert service.pid_file.read_text().strip() == str(pid)
    with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/", timeout=5) as resp:
        assert resp.status == 200
    assert f"service {pid} mode serve" in service.log_file.read_text()


def test_start_again_leaves_the_running_service_alone(services: Factory) -> None:
    service = services()
    pid = service.start(timeout=20)
    assert service.start(timeout=20) == pid
    # A new object, as the next `mlops up` builds it, finds the same process.
    again = services(port=service.port)
    assert again.pid() == pid and again.start(timeout=20) == pid
    assert service.log_file.read_text().count("mode serve") == 1  # started once


def test_concurrent_starts_run_one_process(services: Factory) -> None:
    port = free_port()
    results: list[int | Exception] = []

    def start() -> None:
        try:
            results.append(services(port=port).start(timeout=20))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len(set(results)) == 1, results
    assert isinstance(results[0], int)


def test_dead_pid_in_the_pid_file_is_cleaned_up(services: Factory) -> None:
    service = services()
    service.run_dir.mkdir(parents=True)
    gone = dead_pid()
    service.pid_file.write_text(f"{gone}\n")
    assert service.pid() is None and not service.pid_file.exists()

    service.pid_file.write_text(f"{gone}\n")
    pid = service.start(timeout=20)
    assert pid != gone and service.pid_file.read_text().strip() == str(pid)


@pytest.mark.parametrize("content", ["garbage", ""])
def test_unreadable_pid_file_is_not_trusted(services: Factory, content: str) -> None:
    service = services()
    service.run_dir.mkdir(parents=True)
    service.pid_file.write_text(content)
    assert service.pid() is None
    assert service.start(timeout=20) == service.pid()


def test_pid_of_an_unrelated_program_is_never_signalled(services: Factory) -> None:
    service = services()
    service.run_dir.mkdir(parents=True)
    parent = os.getppid()  # alive, and certainly not our web service
    service.pid_file.write_text(f"{parent}\n")

    assert service.pid() is None
    assert service.stop(timeout=2) is False
    assert pid_alive(parent)

    pid = service.start(timeout=20)  # replaces the stale PID file
    assert pid != parent and service.pid() == pid and pid_alive(parent)
    assert service.pid_file.read_text().strip() == str(pid)


def test_same_program_with_other_arguments_is_not_the_service(services: Factory) -> None:
    # e.g. the port changed in settings: the PID file's process is a different service.
    first = services()
    first_pid = first.start(timeout=20)
    other = services()  # same name and run folder, another port
    assert other.pid() is None and other.stop(timeout=2) is False
    assert pid_alive(first_pid)  # left alone, and still found with the first settings
    assert first.pid() == first_pid


def test_port_taken_by_another_program(services: Factory) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        service = services(port=busy.getsockname()[1])
        with pytest.raises(ServiceError) as caught:
            service.start(timeout=5)
    message = str(caught.value)
    assert f"port 127.0.0.1:{service.port} is already in use by another program" in message
    assert "MLOPS_WEB_PORT" in message
    assert not service.pid_file.exists() and not service.log_file.exists()  # nothing started


def test_service_that_exits_while_starting_reports_its_log(services: Factory) -> None:
    service = services("exit")
    with pytest.raises(ServiceError) as caught:
        service.start(timeout=20)
    message = str(caught.value)
    assert "web exited while starting" in message and str(service.log_file) in message
    assert "boom: cannot open the database" in message
    assert not service.pid_file.exists()


def test_service_not_ready_in_time_is_stopped(services: Factory) -> None:
    service = services("slow")
    with pytest.raises(ServiceError, match=r"not ready on 127\.0\.0\.1:\d+ after 1 s") as caught:
        service.start(timeout=1)
    assert "mode slow" in str(caught.value)  # the log tail
    pid = logged_pid(service, "service")
    assert not pid_alive(pid) and not group_alive(pid)
    assert not service.pid_file.exists()


def test_program_that_cannot_run(tmp_path: Path) -> None:
    service = ManagedProcess(
        "ghost",
        [str(tmp_path / "no-such-program")],
        tmp_path / "run",
        host="127.0.0.1",
        port=free_port(),
        hint="install it first",
    )
    with pytest.raises(ServiceError, match="cannot run .*no-such-program.*install it first"):
        service.start(timeout=5)
    assert not service.is_running() and not service.pid_file.exists()


def test_stop_ends_the_whole_process_group(services: Factory) -> None:
    service = services("child")
    pid = service.start(timeout=20)
    child = logged_pid(service, "child")
    assert pid_alive(child) and group_alive(pid)

    started = time.monotonic()
    assert service.stop(timeout=1) is True
    # The child ignored SIGTERM: it was killed once the timeout passed.
    assert time.monotonic() - started < 10
    assert not pid_alive(pid) and not pid_alive(child) and not group_alive(pid)
    assert not service.pid_file.exists() and not service.is_running()
    assert not http_ok(f"http://127.0.0.1:{service.port}/", timeout=0.5)


def test_stop_when_not_running(services: Factory) -> None:
    service = services()
    assert service.stop() is False  # never started
    service.start(timeout=20)
    assert service.stop() is True
    assert service.stop() is False  # already stopped


def test_stopped_service_starts_again(services: Factory) -> None:
    service = services()
    first = service.start(timeout=20)
    service.stop()
    second = service.start(timeout=20)
    assert second != first and service.pid() == second


def test_service_gets_a_small_environment(
    services: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "do-not-leak")
    service = services("env")
    service.start(timeout=20)
    assert "env on None" in service.log_file.read_text()


def test_log_tail(services: Factory) -> None:
    service = services()
    assert service.log_tail() == "(no log)"
    service.run_dir.mkdir(parents=True)
    service.log_file.write_text("".join(f"line {i}\n" for i in range(30)))
    assert service.log_tail(3) == "line 27\nline 28\nline 29"
