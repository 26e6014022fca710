"""The notification automations on a real Prefect server: applied twice without duplicates,
then a rejected challenger, a quarantined file and a failed ``release`` flow run each reach the
local receiver as one notification carrying the event name and the reason."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events import emit_event

from mlops.automations import NOTIFY_BLOCK, apply_automations, load_spec, remove_automations
from mlops.notify import NotifyServer, read_notifications, running_receiver

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 60


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[NotifyServer]:
    with running_receiver(tmp_path / "notifications.jsonl") as rx:
        yield rx


@pytest.fixture
def applied(prefect_server: str, receiver: NotifyServer) -> Iterator[list[list[str]]]:
    """The automations, applied twice (the second run must change nothing); removed after."""
    first = apply_automations(prefect_server, receiver.url)
    try:
        yield [first, apply_automations(prefect_server, receiver.url)]
    finally:
        remove_automations(prefect_server)


def _wait_for(
    path: Path, wanted: Callable[[dict[str, Any]], bool], count: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        found = [n["body"] for n in read_notifications(path) if wanted(n["body"])]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_apply_is_idempotent(prefect_server: str, applied: list[list[str]]) -> None:
    first, second = applied
    assert first == second and len(set(first)) == len(load_spec())
    names = [entry["name"] for entry in load_spec()]
    with get_client(sync_client=True) as client:
        for name in names:
            assert len(client.read_automations_by_name(name)) == 1, name
        block = client.read_block_document_by_name(NOTIFY_BLOCK, block_type_slug="webhook")
        assert len([a for a in client.read_automations() if a.name in names]) == len(names)
    assert block.data["method"] == "POST"


def test_apply_repairs_duplicates_and_prunes_stale(
    prefect_server: str, applied: list[list[str]], receiver: NotifyServer
) -> None:
    from prefect.events.schemas.automations import AutomationCore

    ids = applied[0]
    with get_client(sync_client=True) as client:
        spec_one = client.read_automation(ids[0])
        assert spec_one is not None
        copy = AutomationCore.model_validate(spec_one.model_dump(exclude={"id"}))
        # A duplicate, as a by-hand `prefect automation create` would make.
        client.create_automation(copy)
        stale = copy.model_copy(update={"name": "notify: something retired"})
        stale_id = client.create_automation(stale)

        assert apply_automations(prefect_server, receiver.url) == ids
        assert len(client.read_automations_by_name(spec_one.name)) == 1
        assert stale_id not in {a.id for a in client.read_automations()}


def test_each_case_notifies_once_with_its_reason(
    applied: list[list[str]], receiver: NotifyServer
) -> None:
    tag = secrets.token_hex(4)
    model = f"mlops.model.notify-test-{tag}"
    blob = f"http://127.0.0.1:10000/devstoreaccount1/quarantine/bad-{tag}.csv"
    emit_event(
        event="mlops.challenger.rejected",
        resource={"prefect.resource.id": model, "prefect.resource.name": f"notify-test-{tag}"},
        payload={"reason": f"challenger RMSE is worse ({tag})", "decision": {}},
    )
    emit_event(
        event="mlops.data.quarantined",
        resource={"prefect.resource.id": blob, "prefect.resource.name": f"bad-{tag}.csv"},
        payload={"file": f"bad-{tag}.csv", "reason": f"3 expectations failed ({tag})"},
    )

    @flow(name="release", persist_result=False)
    def failing_release() -> None:
        raise RuntimeError(f"QA smoke test failed ({tag})")

    state = failing_release(return_state=True)
    assert state.is_failed()
    run_resource = f"prefect.flow-run.{state.state_details.flow_run_id}"

    out = Path(receiver.log.path)
    expected = {
        "mlops.challenger.rejected": (model, "challenger RMSE is worse"),
        "mlops.data.quarantined": (blob, "3 expectations failed"),
        "prefect.flow-run.Failed": (run_resource, "QA smoke test failed"),
    }
    ours = {resource for resource, _ in expected.values()}
    _wait_for(out, lambda body: body.get("resource_id") in ours, count=3)
    time.sleep(1.0)  # a duplicate would arrive right behind the first one
    found = [n["body"] for n in read_notifications(out) if n["body"].get("resource_id") in ours]

    assert sorted(n["event"] for n in found) == sorted(expected), found
    for body in found:
        resource, reason = expected[body["event"]]
        assert body["resource_id"] == resource
        assert reason in body["reason"] and tag in body["reason"]
        if body["event"] == "prefect.flow-run.Failed":
            assert body["state"] == "Failed"
            assert body["url"] is None or str(state.state_details.flow_run_id) in body["url"]
