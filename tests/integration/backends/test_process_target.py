"""ProcessTarget with real processes and real HTTP: QA, production behind HAProxy, rolling
replacement and rollback at saturation (zero failed requests), a replica killed under load
(zero failed requests), failed releases, teardown.

Most tests run a stdlib stand-in for the scoring service (fast to start, answers with its
version); one runs the real ``python -m scoring`` on a real model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from backends.local import daemons, haproxy
from backends.local.envstate import EnvFiles, free_port
from backends.local.process_target import ProcessTarget
from backends.local.rolling import ReleaseHealthError
from core.interfaces import BackendError, NotFoundError, ReleaseSpec

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)
STANDIN = Path(__file__).with_name("standin_service.py")


def _helpers() -> ModuleType:
    if "rollout_helpers" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "rollout_helpers", Path(__file__).with_name("rollout.py")
        )
        assert spec and spec.loader
        sys.modules["rollout_helpers"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["rollout_helpers"]


rollout = _helpers()
Release = Callable[..., ReleaseSpec]


@pytest.fixture
def release(tmp_path: Path) -> Release:
    """``release("2")`` -> a spec for version 2; ``flag="CRASH"`` breaks the stand-in."""

    def make(version: str, flag: str = "") -> ReleaseSpec:
        folder = tmp_path / "models" / f"v{version}"
        folder.mkdir(parents=True, exist_ok=True)
        if flag:
            (folder / flag).touch()
        return ReleaseSpec("diabetes-ridge", version, "0" * 64, model_uri=folder.as_uri())

    return make


@pytest.fixture
def ports() -> dict[str, int]:
    qa = free_port()
    return {"qa": qa, "production": free_port({qa})}


def _target(tmp_path: Path, ports: dict[str, int], **kwargs: object) -> ProcessTarget:
    kwargs.setdefault("service_argv", [sys.executable, str(STANDIN)])
    return ProcessTarget(tmp_path / "state", ports, health_timeout=5.0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def target(tmp_path: Path, ports: dict[str, int]) -> Iterator[ProcessTarget]:
    target = _target(tmp_path, ports)
    yield target
    with contextlib.ExitStack() as stack:  # every environment, even if one teardown fails
        for environment in ports:
            stack.callback(target.teardown, environment)
    # Replicas carry tmp_path in their environment, proxies in their command line.
    assert rollout.pids_mentioning(str(tmp_path)) == []


def _state(tmp_path: Path, environment: str) -> dict:
    return json.loads((tmp_path / "state" / environment / "state.json").read_text())


def _handles(tmp_path: Path, environment: str) -> list[dict]:
    state = _state(tmp_path, environment)
    return [r["handle"] for r in state["current"]["replicas"]] + [state["proxy"]]


def _assert_key_only_in_its_file(tmp_path: Path, environment: str, key: str) -> None:
    """Replicas are handed the key file's path: the key is in no environment or log."""
    key_file = (tmp_path / "state" / environment / "api_key").resolve()
    for handle in _handles(tmp_path, environment):
        environ = Path(f"/proc/{handle['pid']}/environ").read_bytes()
        assert key.encode() not in environ
        assert b"SCORING_API_KEY=" not in environ
    replicas = _state(tmp_path, environment)["current"]["replicas"]
    for replica in replicas:
        environ = Path(f"/proc/{replica['handle']['pid']}/environ").read_bytes()
        assert f"SCORING_API_KEY_FILE={key_file}".encode() in environ.split(b"\0")
    for log in (tmp_path / "state" / environment / "logs").iterdir():
        assert key not in log.read_text(errors="replace")


def _score(url: str, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(url + "/score", json={"data": [rollout.ROW]}, headers=headers, timeout=5)


def test_qa_runs_one_replica_behind_its_stable_url(
    target: ProcessTarget, release: Release, ports: dict[str, int], tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = target.deploy("qa", release("1"))

    assert endpoint.url == f"http://127.0.0.1:{ports['qa']}"
    assert (endpoint.environment, endpoint.model_version) == ("qa", "1")
    assert len(_state(tmp_path, "qa")["current"]["replicas"]) == 1
    assert target.health("qa") and target.current("qa") == endpoint
    assert target.current_release("qa") == release("1") and target.previous("qa") is None
    response = _score(endpoint.url, endpoint.key)
    assert response.status_code == 200 and response.json()["model"]["version"] == "1"
    assert _score(endpoint.url, "not-the-key").status_code == 401
    # The key: random, private file, never in the state, reprs or logs.
    key_file = tmp_path / "state" / "qa" / "api_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(endpoint.key) >= 32
    assert endpoint.key not in (tmp_path / "state" / "qa" / "state.json").read_text()
    assert endpoint.key not in repr(endpoint) and endpoint.key not in caplog.text
    _assert_key_only_in_its_file(tmp_path, "qa", endpoint.key)


def test_production_rolls_forward_and_back_without_a_failed_request(
    target: ProcessTarget, release: Release, tmp_path: Path
) -> None:
    endpoint = target.deploy("production", release("1"))
    v1_handles = _handles(tmp_path, "production")[:-1]
    assert len(v1_handles) == 2 and target.health("production")

    with rollout.LoadGenerator(endpoint.url, endpoint.key) as forward:
        assert target.deploy("production", release("2")).model_version == "2"
    logger.info(
        "v1 -> v2 at saturation: %d requests (%.0f/s), %d failed",
        forward.total, forward.rate, len(forward.failures),
    )  # fmt: skip
    assert forward.failures == []
    assert forward.switched_once("1", "2") and forward.total >= 200
    assert not any(daemons.alive(h) for h in v1_handles)  # drained, then stopped
    assert target.previous("production") == release("1")

    with rollout.LoadGenerator(endpoint.url, endpoint.key) as back:
        assert target.rollback("production").model_version == "1"
    logger.info(
        "rollback v2 -> v1 at saturation: %d requests (%.0f/s), %d failed",
        back.total, back.rate, len(back.failures),
    )  # fmt: skip
    assert back.failures == [] and back.switched_once("2", "1")
    assert target.current_release("production") == release("1")
    assert target.previous("production") == release("2")
    assert target.current("production").key == endpoint.key  # type: ignore[union-attr]


def test_a_replica_killed_under_load_costs_no_request(
    target: ProcessTarget, release: Release, tmp_path: Path
) -> None:
    endpoint = target.deploy("production", release("1"))
    victim, survivor = _state(tmp_path, "production")["current"]["replicas"]
    api = haproxy.runtime(EnvFiles(tmp_path / "state" / "production", "production", 0))

    with rollout.LoadGenerator(endpoint.url, endpoint.key) as killed:
        os.kill(victim["handle"]["pid"], signal.SIGKILL)  # mid-request, at saturation
        deadline = time.monotonic() + 10
        while api.servers()[victim["port"]].status.startswith("UP"):
            assert time.monotonic() < deadline, "HAProxy never marked the killed replica down"
            time.sleep(0.05)
    logger.info(
        "replica killed at saturation: %d requests (%.0f/s), %d failed",
        killed.total, killed.rate, len(killed.failures),
    )  # fmt: skip
    assert killed.failures == [] and killed.versions() == {"1"} and killed.total >= 200
    assert api.servers()[victim["port"]].status == "DOWN"
    assert api.servers()[survivor["port"]].status == "UP"
    assert target.health("production")
    # The damaged release is replaced as usual: the dead replica does not hold it up.
    started = time.monotonic()
    assert target.deploy("production", release("2")).model_version == "2"
    assert time.monotonic() - started < 30
    assert victim["port"] not in api.servers() and survivor["port"] not in api.servers()


def test_a_release_that_never_gets_healthy_is_not_switched_in(
    target: ProcessTarget, release: Release, tmp_path: Path
) -> None:
    endpoint = target.deploy("production", release("1"))

    with rollout.LoadGenerator(endpoint.url, endpoint.key) as load:
        with pytest.raises(ReleaseHealthError, match=r"not switched in.*still serving version 1"):
            target.deploy("production", release("2", flag="UNHEALTHY"))
    assert load.failures == [] and load.versions() == {"1"}
    assert target.current_release("production") == release("1")
    assert target.previous("production") is None
    assert _state(tmp_path, "production")["retiring"] == []
    assert rollout.pids_mentioning(str(tmp_path / "models" / "v2")) == []


def test_a_crashing_release_fails_fast_with_its_log(
    target: ProcessTarget, release: Release
) -> None:
    started = time.monotonic()
    with pytest.raises(ReleaseHealthError, match=r"(?s)exited.*CRASH"):
        target.deploy("qa", release("1", flag="CRASH"))
    assert time.monotonic() - started < 5
    assert target.current("qa") is None and not target.health("qa")


def test_state_is_shared_with_another_instance(
    target: ProcessTarget, release: Release, ports: dict[str, int], tmp_path: Path
) -> None:
    target.deploy("production", release("1"))
    endpoint = target.deploy("production", release("2"))
    handles = _handles(tmp_path, "production")

    other = _target(tmp_path, ports)  # e.g. the CLI, after a Prefect worker deployed
    assert other.current("production") == endpoint
    assert other.previous("production") == release("1") and other.health("production")
    other.teardown("production")
    assert target.current("production") is None
    assert not any(daemons.alive(h) for h in handles)


def test_teardown_stops_every_process_and_forgets_the_key(
    target: ProcessTarget, release: Release, tmp_path: Path
) -> None:
    qa = target.deploy("qa", release("1"))
    target.deploy("production", release("1"))
    target.deploy("production", release("2"))
    handles = _handles(tmp_path, "qa") + _handles(tmp_path, "production")
    assert len(handles) == 5 and all(daemons.alive(h) for h in handles)

    for environment in ("qa", "production"):
        target.teardown(environment)

    assert not any(daemons.alive(h) for h in handles)
    assert not target.health("qa") and target.current("production") is None
    assert not (tmp_path / "state" / "qa" / "api_key").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(qa.url + "/", timeout=2)


def test_rollback_needs_a_previous_release(target: ProcessTarget, release: Release) -> None:
    with pytest.raises(NotFoundError):
        target.rollback("qa")
    target.deploy("qa", release("1"))
    with pytest.raises(NotFoundError, match="no previous release"):
        target.rollback("qa")


def test_refuses_what_it_cannot_run(target: ProcessTarget, release: Release, tmp_path) -> None:
    with pytest.raises(BackendError, match="no port configured"):
        target.deploy("staging", release("1"))
    with pytest.raises(BackendError, match="file://"):
        target.deploy("qa", ReleaseSpec("m", "1", "0" * 64, model_uri="https://example/m"))
    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(BackendError, match="does not exist"):
        target.deploy("qa", ReleaseSpec("m", "1", "0" * 64, model_uri=missing))


def test_the_real_scoring_service_rolls_without_a_failed_request(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    folder, sha = rollout.write_model_folder(tmp_path / "models" / "diabetes-ridge")
    v1, v2 = (ReleaseSpec("diabetes-ridge", v, sha, model_uri=folder.as_uri()) for v in "12")
    target = ProcessTarget(tmp_path / "state", ports, health_timeout=60.0)
    try:
        endpoint = target.deploy("production", v1)
        response = _score(endpoint.url, endpoint.key)
        assert response.status_code == 200, response.text
        with rollout.LoadGenerator(endpoint.url, endpoint.key) as load:
            target.deploy("production", v2)
        logger.info(
            "real service v1 -> v2 at saturation: %d requests (%.0f/s), %d failed",
            load.total, load.rate, len(load.failures),
        )  # fmt: skip
        assert load.failures == [] and load.switched_once("1", "2")
        _assert_key_only_in_its_file(tmp_path, "production", endpoint.key)
    finally:
        target.teardown("production")
    assert rollout.pids_mentioning(str(tmp_path)) == []


def test_replicas_get_the_telemetry_connection_string_as_a_file_and_export(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    from tests.utils.appinsights import ingestion_server, wait_for_request

    folder, sha = rollout.write_model_folder(tmp_path / "models" / "diabetes-ridge")
    release = ReleaseSpec("diabetes-ridge", "1", sha, model_uri=folder.as_uri())
    with ingestion_server() as ingestion:
        secret = ingestion.connection_string
        target = ProcessTarget(
            tmp_path / "state", ports, health_timeout=60.0, appinsights_connection_string=secret
        )
        try:
            endpoint = target.deploy("qa", release)
            headers = {"Authorization": f"Bearer {endpoint.key}", "X-Request-Id": "proc-otel"}
            response = httpx.post(
                endpoint.url + "/score", json={"data": [rollout.ROW]}, headers=headers, timeout=10
            )
            assert response.status_code == 200, response.text
            spans, logs = wait_for_request(ingestion, "proc-otel")
            [replica] = _state(tmp_path, "qa")["current"]["replicas"]
            environ = Path(f"/proc/{replica['handle']['pid']}/environ").read_bytes()
            secret_file = (tmp_path / "state" / "qa" / "appinsights_connection_string").resolve()
            mode = stat.S_IMODE(secret_file.stat().st_mode)
        finally:
            target.teardown("qa")
    assert spans and logs, ingestion.envelopes
    # The replica was handed the path of a 0600 file, not the connection string; the
    # teardown deletes the file with the key.
    assert secret.encode() not in environ
    assert f"SCORING_APPINSIGHTS_CONNECTION_STRING_FILE={secret_file}".encode() in environ
    assert mode == 0o600 and not secret_file.exists()
    for log in (tmp_path / "state" / "qa" / "logs").iterdir():
        assert secret not in log.read_text(errors="replace")
