"""mlops status gathers the target, Prometheus and the lake's drift check per environment,
and reports what it could not read instead of failing."""

from __future__ import annotations

import json

from backends.local.memory import InMemoryDataLake
from backends.local.memory_target import InMemoryTarget
from core.interfaces import BackendError, ReleaseSpec
from core.status import LATEST_CHECK_BLOB, error_rate_query, request_rate_query
from mlops.status import gather

ENVS = ("qa", "production")
COLLECTED_CONTAINER = "collected"


class FakePrometheus:
    """Answers the rate queries from a table; unknown queries have no value."""

    url = "http://127.0.0.1:1"

    def __init__(self, values: dict[str, float], up: bool = True) -> None:
        self.values = values
        self.up = up
        self.asked: list[str] = []

    def ready(self) -> bool:
        return self.up

    def scalar(self, expr: str) -> float | None:
        self.asked.append(expr)
        return self.values.get(expr)


def lake_with(check: bytes) -> InMemoryDataLake:
    lake = InMemoryDataLake()
    lake.ensure_containers(COLLECTED_CONTAINER)
    lake.put(COLLECTED_CONTAINER, LATEST_CHECK_BLOB, check)
    return lake


def check(env: str, drifted: bool) -> bytes:
    return json.dumps(
        {"checked_at": "2026-12-02T14:05:00Z", "env": env, "drifted": drifted, "rows": 10}
    ).encode()


def test_each_environment_gets_its_model_rates_and_drift_check() -> None:
    target = InMemoryTarget()
    target.deploy("production", ReleaseSpec("diabetes-ridge", "4", "0" * 64))
    lake = lake_with(check("production", drifted=True))
    prometheus = FakePrometheus(
        {request_rate_query("production"): 12.5, error_rate_query("production"): 0.5}
    )
    report = gather(ENVS, target, prometheus, lake, COLLECTED_CONTAINER)
    qa, production = report.environments
    assert (qa.model_version, qa.request_rate, qa.last_drift_check) == (None, None, None)
    assert production.model_version == "4" and production.url
    assert (production.request_rate, production.error_rate) == (12.5, 0.5)
    assert production.error_ratio == 0.04
    assert production.last_drift_check is not None and production.last_drift_check.drifted
    assert report.prometheus_up and not production.problems


def test_traffic_without_errors_has_an_error_rate_of_zero() -> None:
    prometheus = FakePrometheus({request_rate_query("qa"): 3.0})
    report = gather(("qa",), InMemoryTarget(), prometheus, InMemoryDataLake(), COLLECTED_CONTAINER)
    assert report.environments[0].error_rate == 0.0


def test_sources_that_are_down_leave_gaps_and_reasons() -> None:
    class BrokenTarget(InMemoryTarget):
        def current(self, environment: str) -> None:
            raise BackendError("the Docker engine is not running")

    lake = lake_with(b"{broken")
    prometheus = FakePrometheus({}, up=False)
    report = gather(ENVS, BrokenTarget(), prometheus, lake, COLLECTED_CONTAINER)
    assert not report.prometheus_up and prometheus.asked == []  # not queried when down
    for env in report.environments:
        assert env.request_rate is None and env.last_drift_check is None
        assert "target: the Docker engine is not running" in env.problems
        assert any("is not a drift check" in p for p in env.problems)


def test_no_drift_check_yet_is_not_a_problem() -> None:
    report = gather(ENVS, None, FakePrometheus({}), InMemoryDataLake(), COLLECTED_CONTAINER)
    assert all(env.problems == [] and env.last_drift_check is None for env in report.environments)
