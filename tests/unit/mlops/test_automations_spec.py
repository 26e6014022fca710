"""The automations spec, offline: it validates, its triggers match the events the flows emit
(and only those), and its payload templates render to JSON with the reason, using the Prefect
server's own trigger matching and template sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.events.schemas.automations import AutomationCore
from prefect.server.events.schemas.automations import Automation as ServerAutomation
from prefect.server.events.schemas.automations import EventTrigger
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.utilities.user_templates import render_user_template_sync

from mlops.automations import (
    MANAGED_TAG,
    NOTIFY_BLOCK_REF,
    AutomationSpecError,
    block_names,
    build_automations,
    load_spec,
)

EventFactory = Callable[[], ReceivedEvent]
BLOCK_ID = UUID("00000000-0000-4000-8000-000000000001")
REJECTED, QUARANTINED, DEAD_LETTERED, RELEASE = (
    "notify: challenger rejected",
    "notify: data quarantined",
    "notify: data dead-lettered",
    "notify: release failed",
)


@pytest.fixture(scope="module")
def automations() -> dict[str, AutomationCore]:
    built = build_automations(load_spec(), {NOTIFY_BLOCK_REF: BLOCK_ID})
    return {a.name: a for a in built}


def _event(event: str, resource: dict[str, str], **kw: Any) -> ReceivedEvent:
    fields = {"id": uuid4(), "occurred": datetime.now(UTC), "event": event, "resource": resource}
    return ReceivedEvent.model_validate(fields | kw)


def _rejected() -> ReceivedEvent:
    return _event(
        "mlops.challenger.rejected",
        {"prefect.resource.id": "mlops.model.diabetes-ridge", "prefect.resource.name": "m"},
        payload={"reason": 'RMSE 61.2 is not better than "56.0" <by> 1% & more', "decision": {}},
    )


def _quarantined() -> ReceivedEvent:
    uri = "http://127.0.0.1:10000/devstoreaccount1/quarantine/bad.csv"
    return _event(
        "mlops.data.quarantined",
        {"prefect.resource.id": uri, "prefect.resource.name": "bad.csv"},
        payload={"file": "bad.csv", "reason": "3 expectations failed", "quarantined_as": uri},
    )


def _dead_lettered() -> ReceivedEvent:
    uri = "http://127.0.0.1:10000/devstoreaccount1/dead-letter/files/x-huge.csv"
    return _event(
        "mlops.data.dead-lettered",
        {"prefect.resource.id": uri, "prefect.resource.name": "huge.csv"},
        payload={
            "file": "huge.csv",
            "reason": "3 attempt(s) failed; last: MemoryError()",
            "attempts": 3,
            "dead_lettered_as": uri,
        },
    )


def _flow_run(state: str, flow: str) -> ReceivedEvent:
    return _event(
        f"prefect.flow-run.{state}",
        {
            "prefect.resource.id": f"prefect.flow-run.{uuid4()}",
            "prefect.resource.name": "crafty-lion",
            "prefect.state-message": "Flow run encountered an exception: QA smoke test failed",
            "prefect.state-name": state,
            "prefect.state-type": state.upper(),
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{uuid4()}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            }
        ],
    )


def _server_side(automation: AutomationCore) -> ServerAutomation:
    return ServerAutomation.model_validate({**automation.model_dump(mode="json"), "id": uuid4()})


def test_spec_builds_four_tagged_automations_on_the_notify_block(
    automations: dict[str, AutomationCore],
) -> None:
    assert set(automations) == {REJECTED, QUARANTINED, DEAD_LETTERED, RELEASE}
    assert block_names(load_spec()) == {NOTIFY_BLOCK_REF}
    for automation in automations.values():
        assert automation.enabled and MANAGED_TAG in automation.tags
        assert automation.trigger.model_dump()["threshold"] == 1
        (action,) = automation.actions
        assert action.type == "call-webhook"
        assert action.block_document_id == BLOCK_ID  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "make", "fires"),
    [
        (REJECTED, _rejected, True),
        (REJECTED, _quarantined, False),
        (QUARANTINED, _quarantined, True),
        (QUARANTINED, _rejected, False),
        (QUARANTINED, _dead_lettered, False),
        (DEAD_LETTERED, _dead_lettered, True),
        (DEAD_LETTERED, _quarantined, False),
        (RELEASE, partial(_flow_run, "Failed", "release"), True),
        (RELEASE, partial(_flow_run, "Crashed", "release"), True),
        (RELEASE, partial(_flow_run, "Completed", "release"), False),
        (RELEASE, partial(_flow_run, "Failed", "retraining"), False),
    ],
)
def test_triggers_match_only_their_events(
    automations: dict[str, AutomationCore], name: str, make: EventFactory, fires: bool
) -> None:
    event = make()
    trigger = _server_side(automations[name]).trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.covers(event) is fires


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        (REJECTED, _rejected, 'RMSE 61.2 is not better than "56.0" <by> 1% & more'),
        (QUARANTINED, _quarantined, "3 expectations failed"),
        (DEAD_LETTERED, _dead_lettered, "3 attempt(s) failed; last: MemoryError()"),
        (
            RELEASE,
            partial(_flow_run, "Failed", "release"),
            "Flow run encountered an exception: QA smoke",
        ),
    ],
)
def test_payloads_render_to_json_with_the_reason(
    automations: dict[str, AutomationCore], name: str, make: EventFactory, reason: str
) -> None:
    event = make()
    automation = _server_side(automations[name])
    (action,) = automation.actions
    body = json.loads(
        render_user_template_sync(action.payload, {"event": event, "automation": automation})  # type: ignore[union-attr]
    )
    assert body["automation"] == name
    assert body["event"] == event.event
    assert body["event_id"] == str(event.id)
    assert body["resource_id"] == event.resource.id
    assert body["reason"].startswith(reason)
    assert datetime.fromisoformat(body["occurred"]) == event.occurred
    if name == RELEASE:
        assert body["state"] == "Failed" and body["url"] is None  # no flow run fetched here
    if name == DEAD_LETTERED:
        assert body["attempts"] == 3 and body["file"] == "huge.csv"
        assert body["dead_lettered_as"] == event.resource.id


def test_missing_values_render_as_null(automations: dict[str, AutomationCore]) -> None:
    automation = _server_side(automations[QUARANTINED])
    event = _event("mlops.data.quarantined", {"prefect.resource.id": "x"})
    (action,) = automation.actions
    body = json.loads(
        render_user_template_sync(action.payload, {"event": event, "automation": automation})  # type: ignore[union-attr]
    )
    assert body["reason"] is None and body["resource_name"] is None


def test_an_unknown_block_is_reported() -> None:
    with pytest.raises(AutomationSpecError, match="unknown block"):
        build_automations(load_spec(), {})


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    spec = tmp_path / "a.yaml"
    spec.write_text("automations:\n  - {name: a}\n  - {name: a}\n")
    with pytest.raises(AutomationSpecError, match="unique name"):
        load_spec(spec)


def test_a_send_notification_action_as_documented_builds(tmp_path: Path) -> None:
    """The Teams/Slack recipe of deployments/NOTIFICATIONS.md validates and renders."""
    spec = tmp_path / "a.yaml"
    spec.write_text(
        """
automations:
  - name: teams
    trigger: {type: event, posture: Reactive, expect: [mlops.data.quarantined], threshold: 1}
    actions:
      - type: send-notification
        block: ms-teams-webhook/ops-channel
        subject: "MLOps: {{ automation.name }}"
        body: |
          {{ event.event }} on {{ event.resource.name }}:
          {{ event.payload.reason }}
"""
    )
    (automation,) = build_automations(load_spec(spec), {"ms-teams-webhook/ops-channel": BLOCK_ID})
    server = _server_side(automation)
    (action,) = server.actions
    event = _quarantined()
    text = render_user_template_sync(action.body, {"event": event, "automation": server})  # type: ignore[union-attr]
    assert text == "mlops.data.quarantined on bad.csv:\n3 expectations failed"
