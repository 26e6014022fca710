"""A real Prometheus scrapes a real environment (HAProxy + two ``python -m scoring`` replicas
of the process target) through the file_sd targets the target writes; the counters it
reports match the traffic sent, and a teardown withdraws the targets."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backends.local.envstate import free_port
from backends.local.process_target import ProcessTarget
from backends.local.prometheus import PrometheusApi, PrometheusService
from core.interfaces import ReleaseSpec
from core.status import EnvironmentStatus
from mlops.status import gather
from tests.utils.scoring import write_model_folder
from training.artifacts import MODEL_FILE, sha256_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="make setup installs it"),
]
ROW = [0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]
OK, UNAUTHORIZED, INVALID = 23, 5, 4  # requests sent through the stable URL, by outcome


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusService]:
    service = PrometheusService(tmp_path / "prometheus", tmp_path / "run", free_port())
    service.start(timeout=60)
    try:
        yield service
    finally:
        service.stop()


def wait_for(check: Callable[[], object], timeout: float = 45.0) -> object:
    """``check()`` once it is truthy; fails with its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"still {value!r} after {timeout:g} s"
            return value
        time.sleep(0.5)


def test_prometheus_counts_what_was_sent(tmp_path: Path, prometheus: PrometheusService) -> None:
    api = PrometheusApi(prometheus.url)
    folder = write_model_folder(tmp_path / "models" / "diabetes-ridge")
    sha = sha256_file(folder / MODEL_FILE)
    release = ReleaseSpec("diabetes-ridge", "3", sha, model_uri=folder.as_uri())
    qa = free_port()
    target = ProcessTarget(
        tmp_path / "state",
        {"qa": qa, "production": free_port({qa})},
        scrape_dir=prometheus.targets_dir,
    )
    try:
        endpoint = target.deploy("production", release)
        up = 'up{environment="production"}'
        # Two replicas and one HAProxy, each scraped successfully.
        wait_for(lambda: api.scalar(f"count({up} == 1)") == 3)

        def served(extra: str = "") -> float:
            expr = f'sum(scoring_requests_total{{environment="production",route="/score"{extra}}})'
            return api.scalar(expr) or 0.0

        def proxied(code: str) -> float:
            expr = (
                'sum(haproxy_frontend_http_responses_total{environment="production",'
                f'proxy="stable",code="{code}"}})'
            )
            return api.scalar(expr) or 0.0

        before = (served(), proxied("2xx"), proxied("4xx"))
        key = {"Authorization": f"Bearer {endpoint.key}"}
        with httpx.Client(base_url=endpoint.url, timeout=10) as client:
            for _ in range(OK):
                assert client.post("/score", json={"data": [ROW]}, headers=key).is_success
            for _ in range(UNAUTHORIZED):
                assert client.post("/score", json={"data": [ROW]}).status_code == 401
            for _ in range(INVALID):
                assert client.post("/score", json={"data": [[1]]}, headers=key).status_code == 422
            # The replicas' metrics are for Prometheus only, not on the stable URL.
            assert client.get("/metrics").status_code == 404
        sent = OK + UNAUTHORIZED + INVALID
        wait_for(lambda: served() - before[0] == sent)
        assert served(',status="200"') == OK
        assert served(',status="401"') == UNAUTHORIZED
        assert served(',status="422"') == INVALID
        errors = 'sum(scoring_errors_total{environment="production",route="/score"})'
        assert api.scalar(errors) == UNAUTHORIZED + INVALID
        rows = 'sum(scoring_rows_scored_total{environment="production"})'
        assert api.scalar(rows) == OK
        info = 'count(scoring_model_info{environment="production",version="3"})'
        assert api.scalar(info) == 2  # both replicas say which model they serve
        # HAProxy saw the same traffic (and the one refused /metrics) at its frontend.
        wait_for(lambda: proxied("4xx") - before[2] == UNAUTHORIZED + INVALID + 1)
        assert proxied("2xx") - before[1] == OK

        # mlops status reads the same: the model, since when, a rate and an error rate.
        def production() -> EnvironmentStatus:
            return gather(("production",), target, api, None, "collected").environments[0]

        status = wait_for(lambda: (s := production()).request_rate and s.error_rate and s)
        assert isinstance(status, EnvironmentStatus)
        assert (status.model_version, status.url) == ("3", endpoint.url)
        assert status.since is not None and status.problems == []
        assert 0 < status.error_rate < status.request_rate  # type: ignore[operator]
    finally:
        target.teardown("production")
    assert not list(prometheus.targets_dir.glob("*-production.json"))
    wait_for(lambda: api.scalar('count(up{environment="production"})') is None)
