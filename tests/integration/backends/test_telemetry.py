"""Flow telemetry at the HTTP boundary: a real flow run (real Prefect API) that resolves its
resources with a connection string set sends its run logs, tagged with the run's id, and
its task-run spans to a local ingestion endpoint; without one nothing is configured."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from backends.telemetry import configure_telemetry
from core.settings import Settings
from tests.utils.appinsights import ingestion_server, of_type

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]

FLOW = textwrap.dedent(
    """
    import sys
    from prefect import flow, get_run_logger, task
    from prefect.runtime import flow_run
    from core.settings import load_settings
    from flows.resources import default_backends

    @task
    def step() -> None:
        get_run_logger().info("task step ran")

    @flow
    def probe() -> str:
        default_backends(load_settings())  # what every flow does first
        get_run_logger().info("flow probe ran")
        step()
        return flow_run.id

    print("RUN", probe())
    """
)


def test_a_flow_run_sends_its_logs_and_task_spans(flows_api: str, tmp_path: Path) -> None:
    with ingestion_server() as ingestion:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "PREFECT_"))},
            "PYTHONPATH": str(REPO),
            "PREFECT_API_URL": flows_api,
            "MLOPS_STATE_DIR": str(tmp_path / "state"),
            "MLOPS_APPINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "TMPDIR": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-c", FLOW], env=env, cwd=tmp_path, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        run_id = done.stdout.split("RUN ")[-1].strip()
        messages = of_type(ingestion.envelopes, "MessageData")
    flow_logs = [m for m in messages if m["message"] == "flow probe ran"]
    assert flow_logs, (messages, done.stderr[-2000:])
    assert flow_logs[0]["properties"]["flow_run_id"] == run_id
    assert any(m["message"] == "task step ran" for m in messages)
    spans = of_type(ingestion.envelopes, "RemoteDependencyData") + of_type(
        ingestion.envelopes, "RequestData"
    )
    task_spans = [s for s in spans if s.get("properties", {}).get("prefect.run.type") == "task"]
    assert task_spans and task_spans[0]["properties"]["prefect.run.name"].startswith("step")


def test_without_a_connection_string_telemetry_stays_off() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    blank = SecretStr("")
    assert configure_telemetry(Settings()) is False
    assert configure_telemetry(Settings(appinsights_connection_string=blank)) is False
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)  # nothing was set up
