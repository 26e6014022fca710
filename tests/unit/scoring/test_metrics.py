"""The service's Prometheus metrics: what a scrape of /metrics says after known traffic."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from scoring.app import create_app
from scoring.metrics import QueueStats, ServiceMetrics
from scoring.settings import ScoringSettings
from tests.utils.scoring import API_KEY

ROW = [0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


def test_counters_match_the_traffic_sent(client: TestClient, model_sha: str) -> None:
    for _ in range(3):
        assert client.post("/score", json={"data": [ROW, ROW]}).status_code == 200
    assert client.post("/score", json={"data": [ROW[:3]]}).status_code == 422
    anonymous = {"Authorization": ""}
    assert client.post("/score", json={"data": [ROW]}, headers=anonymous).status_code == 401
    assert client.get("/no/such/path").status_code == 404

    found = scrape(client)

    def requests(route: str, method: str, status: str) -> float:
        key = ("scoring_requests_total", (("method", method), ("route", route), ("status", status)))
        return found.get(key, 0.0)

    assert requests("/score", "POST", "200") == 3
    assert requests("/score", "POST", "422") == 1
    assert requests("/score", "POST", "401") == 1
    assert requests("other", "GET", "404") == 1  # not the path: scanners make no new series
    assert found[("scoring_errors_total", (("route", "/score"), ("status", "422")))] == 1
    assert found[("scoring_errors_total", (("route", "/score"), ("status", "401")))] == 1
    assert ("scoring_errors_total", (("route", "/score"), ("status", "200"))) not in found
    assert found[("scoring_rows_scored_total", ())] == 6  # refused requests score nothing
    assert found[("scoring_request_duration_seconds_count", (("route", "/score"),))] == 5
    assert found[("scoring_request_duration_seconds_sum", (("route", "/score"),))] > 0
    info = (("name", "diabetes-ridge"), ("sha256", model_sha), ("version", "7"))
    assert found[("scoring_model_info", info)] == 1
    assert found[("scoring_collect_queue_depth", ())] == 0
    assert found[("scoring_collect_dropped_total", ())] == 0


def test_queue_stats_are_read_at_scrape_time(make_settings: Callable[..., ScoringSettings]) -> None:
    stats = QueueStats(depth=0, dropped=0)
    app = create_app(make_settings(), queue_stats=lambda: stats)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        stats = QueueStats(depth=17, dropped=4)
        found = scrape(client)
    assert found[("scoring_collect_queue_depth", ())] == 17
    assert found[("scoring_collect_dropped_total", ())] == 4


def test_unknown_methods_and_paths_share_one_series() -> None:
    metrics = ServiceMetrics("m", "1", "0" * 64, ["/score"])
    for i in range(50):
        metrics.observe(f"/probe/{i}", "BREW", 404, 0.001, 0)
    found = samples(metrics.exposition().decode())
    key = ("scoring_requests_total", (("method", "other"), ("route", "other"), ("status", "404")))
    assert found[key] == 50
    assert len([k for k in found if k[0] == "scoring_requests_total"]) == 1
