"""``mlops demo`` as ``make demo`` runs it, on a stack of its own (free ports, own state):
new data reaches production, a bad file is quarantined, then production's traffic drifts.

What the drift half must leave behind, read from the real Prefect server, Azurite and
Prometheus: the ``monitoring`` run's report (a drift table and a markdown report with
charts), ``mlops.drift.detected``, a retraining run the ``retrain-on-drift`` automation
started (not the demo), the labelled rows taken off landing by a retraining run, and
Prometheus' count of production's scoring requests equal to what the demo sent.

The process target (no Docker image build): test_whole_loop.py releases to Docker. Replicas
write their collected rows every 5 s (MLOPS_COLLECT_WINDOW_SECONDS) instead of every 60 s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from core.events import DRIFT_DETECTED, RETRAIN_ON_DRIFT
from mlops.demo_drift import SCORED, TRAFFIC
from tests.utils.stack import LocalStack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, str]]:
    stack = LocalStack(
        tmp_path_factory.mktemp("demo"),
        release_target="process",
        extra_env={"MLOPS_COLLECT_WINDOW_SECONDS": "5"},
    )
    with running_stack(stack):
        result = stack.mlops("demo", timeout=2400)
        (stack.root / "demo.out").write_text(result.stdout + result.stderr)  # kept by pytest
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
        yield stack, result.stdout


def api(stack: LocalStack, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{stack.settings.prefect_api_url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_the_monitoring_run_publishes_a_table_and_a_report_with_charts(
    demo: tuple[LocalStack, str],
) -> None:
    stack, out = demo
    match = re.search(r"/runs/flow-run/([0-9a-f-]{36})", out)
    assert match, out[-3000:]
    artifacts = api(stack, "/artifacts/filter", {"flow_runs": {"id": {"any_": [match[1]]}}})
    by_key = {a["key"]: a for a in artifacts}
    assert by_key["drift-table"]["type"] == "table"
    report = by_key["monitoring-report"]
    assert report["type"] == "markdown"
    assert report["data"].count("data:image/svg+xml") >= 2  # bmi and s5, reference vs live
    table = by_key["drift-table"]["data"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert {r["feature"] for r in rows if r["drifted"] == "DRIFT"} >= {"bmi", "s5"}


def test_drift_is_announced_and_the_automation_starts_a_retraining(
    demo: tuple[LocalStack, str],
) -> None:
    stack, out = demo
    events = api(
        stack, "/events/filter", {"filter": {"event": {"name": [DRIFT_DETECTED]}}, "limit": 50}
    )["events"]
    assert events, "no mlops.drift.detected event"
    assert {"bmi", "s5"} <= set(events[0]["payload"]["drifted_features"])
    runs = api(stack, "/flow_runs/filter", {"deployments": {"name": {"any_": ["retraining"]}}})
    by_drift = [
        r
        for r in runs
        if (r.get("created_by") or {}).get("type") == "AUTOMATION"
        and r["created_by"]["display_value"] == RETRAIN_ON_DRIFT
    ]
    assert by_drift, [(r["name"], r.get("created_by")) for r in runs]
    assert by_drift[0]["state_type"] in ("COMPLETED", "FAILED"), by_drift[0]["state"]
    assert f"retraining  {RETRAIN_ON_DRIFT}: " in out


def test_the_drifted_labelled_rows_reach_the_curated_set(demo: tuple[LocalStack, str]) -> None:
    stack, _ = demo
    lake = BlobServiceClient.from_connection_string(stack.settings.blob_connection)
    settings = stack.settings
    names = {
        container: [b.name for b in lake.get_container_client(container).list_blobs()]
        for container in (
            settings.landing_container,
            settings.curated_container,
            settings.quarantine_container,
        )
    }
    assert not [n for n in names[settings.landing_container] if "labelled-" in n]
    # Drifted but valid: the labelled_rows suite (no distribution bounds) lets them into the
    # curated set, whichever retraining run (drift's or the file's own blob event) took them.
    merged = [n for n in names[settings.curated_container] if "labelled-demo-" in n]
    assert merged and all(n.startswith("accepted/") for n in merged), names
    assert not [n for n in names[settings.quarantine_container] if "labelled-demo-" in n], names


def test_prometheus_counted_what_the_demo_sent(demo: tuple[LocalStack, str]) -> None:
    stack, out = demo
    match = re.search(r"(\d+) drifted requests to production; Prometheus counted: (\d+)", out)
    assert match, out[-3000:]
    assert int(match[1]) == int(match[2]) == TRAFFIC
    # And Prometheus still says so (the smoke tests of the release came before). Each
    # replica's counter is its own series, and the drift's retraining may have released a
    # new version meanwhile: new replicas count from 0 and the old ones' series ended. So
    # the highest value of each series over the last hour, summed (CI once read 203: the
    # new replicas only).
    query = f"sum(max_over_time({SCORED}[1h]))"
    response = httpx.get(
        f"{stack.settings.prometheus_url}/api/v1/query", params={"query": query}, timeout=10
    )
    assert float(response.json()["data"]["result"][0]["value"][1]) >= TRAFFIC
