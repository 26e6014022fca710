"""The Azure Function that relays Event Grid's BlobCreated events to Prefect (see relay.py).

Two entry points, one relay:

- ``blob_created``: an Event Grid trigger (subscription endpoint type ``AzureFunction``,
  Event Grid schema): the platform handles validation and retries.
- ``events``: a webhook (subscription endpoint type ``WebHook``) for the CloudEvents 1.0
  schema, or for Event Grid schema deliveries sent to a URL. It answers Event Grid's
  subscription validation handshake and the CloudEvents abuse-protection ``OPTIONS``
  handshake; 400 for a delivery it cannot read (not retried), 502 when Prefect refuses
  the batch (retried by Event Grid).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func
import httpx
from relay import RelayConfig, relay

app = func.FunctionApp()
logger = logging.getLogger(__name__)

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"


@app.function_name("blob_created")
@app.event_grid_trigger(arg_name="event")
def blob_created(event: func.EventGridEvent) -> None:
    delivery = {
        "id": event.id,
        "eventType": event.event_type,
        "subject": event.subject,
        "topic": event.topic,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
    }
    relay([delivery], RelayConfig.from_env())  # raises on refusal: the platform retries


@app.function_name("events")
@app.route(route="events", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
def events(req: func.HttpRequest) -> func.HttpResponse:
    if req.method == "OPTIONS":  # CloudEvents webhook abuse protection
        origin = req.headers.get("WebHook-Request-Origin", "")
        return func.HttpResponse(status_code=200, headers={"WebHook-Allowed-Origin": origin})
    try:
        body = req.get_json()
    except ValueError:
        return _error(400, "the body is not JSON")
    deliveries: list[dict[str, Any]] = body if isinstance(body, list) else [body]
    if not all(isinstance(d, dict) for d in deliveries):
        return _error(400, "expected an event object or an array of them")
    for delivery in deliveries:
        if delivery.get("eventType") == VALIDATION_EVENT:
            code = (delivery.get("data") or {}).get("validationCode")
            return func.HttpResponse(
                json.dumps({"validationResponse": code}), mimetype="application/json"
            )
    try:
        result = relay(deliveries, RelayConfig.from_env())
    except ValueError as exc:  # a BlobCreated event that cannot be relayed: don't retry
        return _error(400, str(exc))
    except httpx.HTTPError as exc:
        logger.error("Prefect refused the events: %s", exc)
        return _error(502, "the Prefect API did not accept the events; deliver again")
    body_out = {"posted": len(result.posted), "ignored": len(result.ignored)}
    return func.HttpResponse(json.dumps(body_out), mimetype="application/json")


def _error(status: int, message: str) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"error": message}), status_code=status, mimetype="application/json"
    )
