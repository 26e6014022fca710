"""Sending the project's events (``core.events``) to the Prefect API.

Two ways, chosen by what a lost event costs:
- ``send_events``: on a client of our own, returning only after the server confirmed every
  event (a websocket ping after each, answered once the server read what came before: what
  Prefect's client calls a checkpoint); a failure, or no confirmation within
  ``CONFIRM_SECONDS``, raises. For events that start work (a new blob, a registered model).
  Without the checkpoint, a frame the connection lost on the way (a proxy or server dying
  mid-send) still counted as sent, and the model was tagged announced but never released.
- ``emit``: Prefect's ``emit_event``, a background queue that logs and drops what it cannot
  send. For notifications, where a lost one costs a message, not a run.
"""

from __future__ import annotations

import asyncio

from prefect.client.orchestration import get_client
from prefect.events import Event, emit_event
from prefect.events.clients import get_events_client
from prefect.events.related import related_resources_from_run_context
from prefect.utilities.asyncutils import run_coro_as_sync

from core.events import EventSpec

CONFIRM_SECONDS = 30.0  # all events sent and confirmed, or the send fails
# Quick reconnects only: the caller's task retries are the retry policy (Prefect's default,
# 10 attempts with pauses, held a run ~10 s per failed send while the events API was down).
RECONNECTION_ATTEMPTS = 2


def send_events(specs: list[EventSpec]) -> list[Event]:
    """Send ``specs`` and wait until the server took them all; returns the sent events."""
    return run_coro_as_sync(_send(specs)) if specs else []


def emit(spec: EventSpec) -> None:
    """Queue ``spec`` with ``emit_event`` (best effort)."""
    emit_event(event=spec.event, resource=spec.resource, related=spec.related, payload=spec.payload)


async def _send(specs: list[EventSpec]) -> list[Event]:
    async with get_client() as client:
        # What emit_event attaches too: the flow run, flow, deployment... that sent them.
        context = await related_resources_from_run_context(client)
    events = [
        Event.model_validate(
            {
                "event": spec.event,
                "resource": spec.resource,
                "related": [*spec.related, *context],
                "payload": spec.payload,
            }
        )
        for spec in specs
    ]
    async with asyncio.timeout(CONFIRM_SECONDS):
        # checkpoint_every=1: every emit waits for the server's pong before it returns.
        async with get_events_client(
            reconnection_attempts=RECONNECTION_ATTEMPTS, checkpoint_every=1
        ) as emitter:
            for event in events:
                await emitter.emit(event)
    return events
