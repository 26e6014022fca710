"""The release smoke test against the real service and against stand-ins that break one rule.

Every server here listens on 127.0.0.1 (uvicorn in a thread) and is stopped by its test.
Each failing case asserts which checks fail, so a test cannot pass for the wrong reason.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sklearn.linear_model import Ridge
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from core.interfaces import Endpoint
from core.probe import HttpProbe
from core.smoke import SmokeConfig, SmokeReport, run_smoke_test
from scoring.app import create_app
from scoring.settings import ScoringSettings
from training.artifacts import MODEL_FILE, sha256_file

CHECKS = ["ready", "auth", "golden", "bad_request", "latency"]
FAST = SmokeConfig(requests=50, ready_timeout_s=10, timeout_s=5)


@contextmanager
def serve(app: Any, grace_s: int = 1) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="auto", log_config=None, access_log=False, timeout_graceful_shutdown=grace_s
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during startup"
            assert time.monotonic() < deadline, "uvicorn did not start in 20 s"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def standin(
    golden: dict[str, Any],
    key: str,
    *,
    version: str = "7",
    ready: bool = True,
    enforce_auth: bool = True,
    shift: float = 0.0,
    bad_input_status: int = 422,
    behind_router: bool = False,
    score_status: int = 200,
    with_model: bool = True,
    delay_s: float = 0.0,
) -> Starlette:
    """A scoring service that answers golden rows from a lookup; each knob breaks one rule."""
    pairs = zip(golden["data"], golden["predictions"], strict=True)
    lookup = {tuple(row): prediction for row, prediction in pairs}

    async def readiness(request: Request) -> Response:
        return PlainTextResponse("Healthy")

    async def score(request: Request) -> Response:
        if not ready:
            return PlainTextResponse("loading", 503)
        given = request.headers.get("authorization", "")
        if enforce_auth and given != f"Bearer {key}":
            error = {"code": "invalid_key", "message": "bad key"}
            return JSONResponse({"error": error}, 401)
        await asyncio.sleep(delay_s)
        try:
            rows = json.loads(await request.body())["data"]
            predictions = [lookup[tuple(row)] + shift for row in rows]
        except (ValueError, KeyError, TypeError):
            # Echoes the Authorization header: the report must still not show the key.
            error = {"code": "bad_input", "message": f"cannot score (auth was {given})"}
            if behind_router and bad_input_status != 200:  # Azure ML's router: 424 + header
                headers = {"ms-azureml-model-error-statuscode": str(bad_input_status)}
                return PlainTextResponse("model error", 424, headers=headers)
            return JSONResponse({"error": error}, bad_input_status)
        body: dict[str, Any] = {"predictions": predictions}
        if with_model:
            body["model"] = {"name": "diabetes-ridge", "version": version}
        return JSONResponse(body, score_status)

    # GET / stays, answering "Healthy": the smoke test must not rely on it (a router hides it).
    routes = [Route("/", readiness), Route("/score", score, methods=["POST"])]
    return Starlette(routes=routes)


def endpoint_at(url: str, key: str) -> Endpoint:
    return Endpoint("qa", url, key, model_name="diabetes-ridge", model_version="7")


def failed(report: SmokeReport) -> set[str]:
    return {check.name for check in report.checks if not check.passed}


def detail(report: SmokeReport, name: str) -> str:
    return next(check.detail for check in report.checks if check.name == name)


def assert_key_hidden(report: SmokeReport, key: str) -> None:
    assert key not in report.to_markdown()
    assert key not in json.dumps(report.to_dict())
    assert key not in repr(report)


@pytest.fixture
def golden(model_dir: Path) -> dict[str, Any]:
    """The shared model folder's golden requests (a fresh copy per test)."""
    data: dict[str, Any] = json.loads((model_dir / "golden.json").read_text())
    return data


@pytest.fixture
def real_service(settings: ScoringSettings) -> Iterator[str]:
    """The real scoring app (model version 7) on loopback; yields its URL."""
    with serve(create_app(settings)) as url:
        yield url


# ------------------------------------------------------------------ the real service
def test_real_service_passes(real_service: str, golden: dict[str, Any], api_key: str) -> None:
    config = SmokeConfig(ready_timeout_s=10)  # the default 200 latency requests
    report = run_smoke_test(endpoint_at(real_service, api_key), golden, "7", config)

    assert report.passed, report.to_markdown()
    assert [check.name for check in report.checks] == CHECKS
    assert report.requests == 200
    assert report.p50_ms is not None and report.p95_ms is not None
    assert 0 < report.p50_ms <= report.p95_ms < config.p95_budget_ms
    assert f"{len(golden['data'])} golden rows" in detail(report, "golden")
    markdown = report.to_markdown()
    assert "PASSED" in markdown and "| latency | pass |" in markdown
    assert report.summary() == "smoke test passed"
    as_dict = report.to_dict()
    assert as_dict["passed"] is True and as_dict["environment"] == "qa"
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert_key_hidden(report, api_key)


def test_wrong_expected_version_fails_golden(
    real_service: str, golden: dict[str, Any], api_key: str
) -> None:
    report = run_smoke_test(endpoint_at(real_service, api_key), golden, "8", FAST)

    assert failed(report) == {"golden", "latency"}  # latency answers carry the version too
    assert "served model version '7', expected '8'" in detail(report, "golden")
    assert "FAILED" in report.to_markdown()
    assert report.summary().startswith("smoke test failed: golden (20 golden rows: served")


def test_tampered_golden_fails_golden(
    real_service: str, golden: dict[str, Any], api_key: str
) -> None:
    golden["predictions"][3] += 0.01  # far beyond 1e-6 relative to ~150
    report = run_smoke_test(endpoint_at(real_service, api_key), golden, "7", FAST)

    assert failed(report) == {"golden", "latency"}
    text = detail(report, "golden")
    assert "1 of 20 predictions differ from golden" in text and "first row 3" in text


def test_a_different_model_fails_golden(
    tmp_path: Path,
    make_settings: Callable[..., ScoringSettings],
    model_folder_factory: Callable[..., Path],
    golden: dict[str, Any],
    api_key: str,
) -> None:
    # The right version label on the wrong model: only the golden predictions can tell.
    other = model_folder_factory(tmp_path / "other", Ridge(alpha=5.0))
    sha = sha256_file(other / MODEL_FILE)
    with serve(create_app(make_settings(model_dir=other, model_sha256=sha))) as url:
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", FAST)

    assert failed(report) == {"golden", "latency"}
    assert "20 of 20 predictions differ" in detail(report, "golden")


def test_impossible_latency_budget_fails_latency_only(
    real_service: str, golden: dict[str, Any], api_key: str
) -> None:
    config = SmokeConfig(p95_budget_ms=0.001, ready_timeout_s=10)
    report = run_smoke_test(endpoint_at(real_service, api_key), golden, "7", config)

    assert failed(report) == {"latency"}
    assert report.p95_ms is not None and report.p95_ms > 0.001
    # 11 slow answers out of 200 already put p95 over budget: no point sending the rest.
    assert report.requests == 11
    assert "stopped early" in detail(report, "latency")
    assert "budget 0.001 ms" in detail(report, "latency")


def test_unreachable_url_fails_ready_quickly(golden: dict[str, Any], api_key: str) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = SmokeConfig(ready_timeout_s=0.5, timeout_s=2)
    started = time.monotonic()
    report = run_smoke_test(endpoint_at(url, api_key), golden, "7", config)

    assert time.monotonic() - started < 5
    assert [check.name for check in report.checks] == CHECKS  # every check still recorded
    assert failed(report) == set(CHECKS)
    assert "not ready within 0.5 s (ConnectError" in detail(report, "ready")
    assert "ConnectError" in detail(report, "auth")
    assert detail(report, "latency") == "skipped: the service is not ready"
    assert report.requests == 0 and report.p95_ms is None
    assert "n/a" in report.to_markdown()


# ------------------------------------------------------------------ stand-ins
def test_the_standin_passes_as_is(golden: dict[str, Any], api_key: str) -> None:
    # The control for the cases below: each breaks one rule of a service that passes.
    with serve(standin(golden, api_key)) as url:
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", FAST)
    assert report.passed, report.to_markdown()


def test_a_refusal_behind_azure_mls_router_passes(golden: dict[str, Any], api_key: str) -> None:
    # The router answers 424 with the container's 422 in a header, and a body of its own.
    with serve(standin(golden, api_key, behind_router=True)) as url:
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", FAST)
    assert report.passed, report.to_markdown()


def test_differences_within_tolerance_pass(golden: dict[str, Any], api_key: str) -> None:
    with serve(standin(golden, api_key, shift=1e-9)) as url:
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", FAST)
    assert report.passed, report.to_markdown()


@pytest.mark.parametrize(
    ("knobs", "failing", "check", "reason"),
    [
        pytest.param(
            {"enforce_auth": False},
            {"auth"},
            "auth",
            "without a key: HTTP 200, expected 401; POST /score with a wrong key: HTTP 200",
            id="no-auth",
        ),
        pytest.param(
            {"shift": 0.5},
            {"golden", "latency"},
            "golden",
            "20 of 20 predictions differ from golden",
            id="wrong-predictions",
        ),
        pytest.param(
            {"bad_input_status": 500},
            {"bad_request"},
            "bad_request",
            "a row of 9 values: HTTP 500, expected a 4xx refusal of the input; "
            "invalid JSON: HTTP 500",
            id="500-on-bad-input",
        ),
        pytest.param(
            {"bad_input_status": 500, "behind_router": True},
            {"bad_request"},
            "bad_request",
            "a row of 9 values: HTTP 424 (service 500), expected a 4xx refusal of the input",
            id="500-on-bad-input-behind-a-router",
        ),
        pytest.param(
            {"bad_input_status": 200},
            {"bad_request"},
            "bad_request",
            "a row of 9 values: HTTP 200",
            id="accepts-bad-input",
        ),
        pytest.param(
            {"ready": False},  # the scoring route answers 503, whatever GET / says
            {"ready", "auth", "golden", "bad_request", "latency"},
            "ready",
            "not ready within 0.5 s (HTTP 503)",
            id="never-ready",
        ),
        pytest.param(
            {"with_model": False},
            {"golden", "latency"},
            "golden",
            "response is not the scoring contract (KeyError: 'model')",
            id="no-model-in-response",
        ),
        pytest.param(
            {"version": "6"},
            {"golden", "latency"},
            "golden",
            "served model version '6', expected '7'",
            id="old-version-still-served",
        ),
    ],
)
def test_a_broken_service_fails_the_right_check(
    golden: dict[str, Any],
    api_key: str,
    knobs: dict[str, Any],
    failing: set[str],
    check: str,
    reason: str,
) -> None:
    config = FAST.model_copy(update={"ready_timeout_s": 0.5})
    with serve(standin(golden, api_key, **knobs)) as url:
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", config)

    assert failed(report) == failing, report.to_markdown()
    assert reason in detail(report, check)
    assert_key_hidden(report, api_key)


def test_a_service_that_refuses_the_right_key_fails(golden: dict[str, Any], api_key: str) -> None:
    # Its 401s must not pass for "bad input refused with a 4xx".
    with serve(standin(golden, "another-key-0123456789abcdef")) as url:
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", FAST)

    assert failed(report) == {"golden", "bad_request", "latency"}
    assert "HTTP 401" in detail(report, "golden")
    assert "invalid JSON: HTTP 401, expected a 4xx refusal" in detail(report, "bad_request")


def test_a_hanging_service_is_bounded_and_not_retried(golden: dict[str, Any], api_key: str) -> None:
    config = SmokeConfig(requests=200, timeout_s=0.3, ready_timeout_s=1)
    with serve(standin(golden, api_key, delay_s=1), grace_s=5) as url:
        started = time.monotonic()
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", config)
        elapsed = time.monotonic() - started

    # Readiness gives up after 1 s; then at most 4 timeouts of 0.3 s: golden (2 requests),
    # bad_request (1 or 2); latency is not tried on a service that never got ready.
    assert elapsed < 4
    assert failed(report) == {"ready", "golden", "bad_request", "latency"}
    assert "ReadTimeout" in detail(report, "ready") and "ReadTimeout" in detail(report, "golden")
    assert detail(report, "latency") == "skipped: the service is not ready"
    assert report.requests == 0


def test_an_echoed_key_is_redacted(golden: dict[str, Any], api_key: str) -> None:
    with serve(standin(golden, api_key, score_status=500)) as url:
        report = run_smoke_test(endpoint_at(url, api_key), golden, "7", FAST)
    assert "golden" in failed(report)
    assert_key_hidden(report, api_key)


# ------------------------------------------------------------------ inputs
@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"data": [], "predictions": []},
        {"data": [[1.0, 2.0]], "predictions": [1.0, 2.0]},
        {"data": [[1.0, 2.0], [1.0]], "predictions": [1.0, 2.0]},
        {"data": [[1.0, float("nan")]], "predictions": [1.0]},
        {"data": [[1.0, 2.0]], "predictions": ["3"]},
    ],
)
def test_malformed_golden_is_refused_before_any_request(bad: dict[str, Any]) -> None:
    endpoint = Endpoint("qa", "http://127.0.0.1:9", "k" * 20)
    with pytest.raises(ValueError, match="golden"):
        run_smoke_test(endpoint, bad, "7", FAST)


def test_config_defaults() -> None:
    config = SmokeConfig()
    assert (config.requests, config.p95_budget_ms, config.tolerance) == (200, 250.0, 1e-6)
    assert (config.timeout_s, config.ready_timeout_s) == (10, 60)
    with pytest.raises(ValueError):
        SmokeConfig(requests=0)


# ------------------------------------------------------------------ the release flow's probe
def test_http_probe_asks_the_service_which_version_it_serves(
    real_service: str, api_key: str
) -> None:
    """Through the scoring route (a router hides every other path): its answer names the
    model version."""
    assert HttpProbe().served_version(endpoint_at(real_service, api_key)) == "7"
    with pytest.raises(httpx.HTTPStatusError):  # a wrong key is an error, never a version
        HttpProbe().served_version(endpoint_at(real_service, "wrong-key"))
