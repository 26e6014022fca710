"""Application Insights at the HTTP boundary: the real service, configured with a connection
string whose IngestionEndpoint is a local HTTP server, sends it a request span and the
request-log record, both carrying the request id the client sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.utils.appinsights import Ingestion, ingestion_server, request_telemetry
from tests.utils.scoring_process import scoring_service

pytestmark = pytest.mark.integration
ROW = [0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]


@pytest.fixture
def ingestion() -> Iterator[Ingestion]:
    with ingestion_server() as server:
        yield server


def test_a_request_span_and_its_log_reach_application_insights(
    ingestion: Ingestion,
    model_dir: Path,
    model_sha: str,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # No calls to Microsoft's own statistics endpoint from a test; retries stay local.
    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    rid = "otel-check-7f3a"
    with scoring_service(
        model_dir,
        model_sha,
        api_key,
        appinsights_connection_string=ingestion.connection_string,
        log_flush_interval=0,
    ) as service:
        response = httpx.post(
            service.url + "/score",
            json={"data": [ROW, ROW]},
            headers={"Authorization": f"Bearer {api_key}", "X-Request-Id": rid},
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] == rid
    # SIGTERM: the service exits cleanly and the exporter flushes what it holds.
    assert service.proc.returncode == 0, service.output
    spans, logs = request_telemetry(ingestion.envelopes, rid)
    assert len(spans) == 1, (ingestion.envelopes, service.output)
    span = spans[0]["data"]["baseData"]
    assert span["responseCode"] == "200" and span["success"] is True
    assert logs and logs[0]["data"]["baseData"]["message"] == "request", ingestion.envelopes
    # The log record belongs to the request's trace.
    operation = "ai.operation.id"
    assert logs[0]["tags"][operation] == spans[0]["tags"][operation]


def test_without_a_connection_string_nothing_is_sent(
    ingestion: Ingestion, model_dir: Path, model_sha: str, api_key: str
) -> None:
    with scoring_service(model_dir, model_sha, api_key) as service:
        httpx.post(
            service.url + "/score",
            json={"data": [ROW]},
            headers={"Authorization": f"Bearer {api_key}"},
        )
    time.sleep(0.5)
    assert ingestion.envelopes == []
    assert "telemetry" not in service.output
