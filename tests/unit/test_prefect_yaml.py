"""prefect.yaml is code: every entrypoint imports a flow, every parameter it passes (directly or
from a trigger) exists in that flow's signature, and schedules and triggers parse."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.flows import Flow, load_flow_from_entrypoint

from core.deploy import WORK_POOL, WORK_POOL_TEMPLATE
from core.events import (
    BLOB_CREATED,
    DRIFT_DETECTED,
    MODEL_REGISTERED,
    RETRAIN_ON_DRIFT,
    drift_detected,
    model_registered,
)
from core.interfaces import ModelVersion

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}


def load(deployment: dict[str, Any]) -> Flow[Any, Any]:
    path, _, name = deployment["entrypoint"].partition(":")
    return load_flow_from_entrypoint(f"{ROOT / path}:{name}")


def test_the_expected_deployments_exist() -> None:
    assert set(DEPLOYMENTS) == {
        "retraining",
        "release",
        "blob-watcher",
        "monitoring",
        "build-validation",
        "batch-scoring",
    }


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_is_a_flow_and_parameters_match_its_signature(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    flow = load(deployment)
    assert isinstance(flow, Flow)
    accepted = set(inspect.signature(flow.fn).parameters)
    passed = set(deployment.get("parameters") or {})
    for trigger in deployment.get("triggers") or []:
        passed |= set(trigger.get("parameters") or {})
    assert passed <= accepted, f"{name} passes {sorted(passed - accepted)} not in {accepted}"
    assert deployment["work_pool"]["name"] == WORK_POOL
    assert deployment.get("description")


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_schedules_and_triggers_parse(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    for schedule in deployment.get("schedules") or []:
        if "cron" in schedule:
            CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
        else:
            IntervalSchedule(interval=timedelta(seconds=schedule["interval"]))
    for trigger in deployment.get("triggers") or []:
        parsed = DeploymentEventTrigger(**trigger)
        assert parsed.enabled


def test_triggers_listen_for_the_events_the_code_emits() -> None:
    retrain, on_drift = DEPLOYMENTS["retraining"]["triggers"]
    assert retrain["expect"] == [BLOB_CREATED]
    assert on_drift["expect"] == [DRIFT_DETECTED]
    assert on_drift["name"] == RETRAIN_ON_DRIFT
    # The trigger matches the resource the flow's event names, and passes its model name.
    spec = drift_detected("diabetes-ridge", "production", ["bmi"], False, ("a", "b"), [])
    assert on_drift["match"] == {"prefect.resource.id": "mlops.model.*"}
    assert spec.resource["prefect.resource.id"].startswith("mlops.model.")
    assert on_drift["parameters"] == {"model_name": "{{ event.resource['prefect.resource.name'] }}"}
    assert retrain["parameters"] == {"data_uri": "{{ event.resource.id }}", "drain_landing": True}
    (release,) = DEPLOYMENTS["release"]["triggers"]
    assert release["expect"] == [MODEL_REGISTERED]
    assert set(release["parameters"]) == {"model_name", "version"}


def test_the_release_trigger_skips_versions_their_retraining_run_released() -> None:
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent

    (spec,) = DEPLOYMENTS["release"]["triggers"]
    fields = ("expect", "match", "posture", "threshold", "within")
    trigger = EventTrigger(**{k: spec[k] for k in fields})
    version = ModelVersion("m", "3", "file:///r/m/3", "ab" * 32)
    for released, fires in ((False, True), (True, False)):
        spec_ = model_registered(version, "run-1", released=released)
        event = ReceivedEvent.model_validate(
            {
                "event": spec_.event,
                "resource": spec_.resource,
                "id": uuid4(),
                "occurred": datetime.now(UTC),
            }
        )
        assert trigger.covers(event) is fires


def test_retraining_and_release_never_run_twice_at_once() -> None:
    for name in ("retraining", "release"):
        limit = DEPLOYMENTS[name]["concurrency_limit"]
        assert limit == {"limit": 1, "collision_strategy": "ENQUEUE"}  # nothing dropped


def test_every_run_pulls_the_project_directory() -> None:
    (step,) = SPEC["pull"]
    assert "prefect.deployments.steps.set_working_directory" in step
    assert WORK_POOL_TEMPLATE.is_file()


def test_monitoring_runs_on_a_schedule_one_at_a_time() -> None:
    monitoring = DEPLOYMENTS["monitoring"]
    (schedule,) = monitoring["schedules"]
    assert schedule["cron"] == "*/10 * * * *"
    assert monitoring["concurrency_limit"]["limit"] == 1
