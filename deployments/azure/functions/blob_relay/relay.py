"""Event Grid ``Microsoft.Storage.BlobCreated`` -> the project's ``azure.storage.blob.created``
event on the Prefect API. The code of the Azure Function in ``function_app.py``.

In Azure, new blobs reach Prefect this way; locally the blob watcher flow stands in for it
and emits the same event (``core.blob_events``: one shape for both routes), so the
retraining deployment's trigger cannot tell the two apart.

- **Both schemas**: Event Grid's own (``eventType``, ``topic``, ``eventTime``) and
  CloudEvents 1.0 (``type``, ``source``, ``time``).
- **Idempotent on the event id**: Event Grid redelivers an event with the same ``id`` until
  a delivery succeeds; the Prefect event's id is a UUID derived from it, and the Prefect
  server skips an event id it has seen (it neither stores it twice nor lets a trigger see
  it twice).
- **Only the landing container**: other containers' events are acknowledged and dropped
  (the Event Grid subscription filters on the landing container too; this is the second
  line).
- **Authenticated**: Prefect Cloud with an API key (``PREFECT_API_KEY``), a self-hosted
  server with its basic-auth string (``PREFECT_API_AUTH_STRING``, the server's
  ``PREFECT_SERVER_API_AUTH_STRING``). In Azure both arrive as app settings that are Key
  Vault references, so no secret is stored in the Function App.
- A rejected post raises: the Function fails and Event Grid retries the delivery.

Stdlib, ``httpx`` and ``core.blob_events`` only (no Prefect), so the Function's package stays
small: ``make relay-package`` builds it.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from core.blob_events import EVENT_GRID_BLOB_CREATED, from_event_grid

logger = logging.getLogger(__name__)

# Namespace of the Prefect event ids derived from Event Grid event ids (fixed forever: a
# new namespace would make every redelivery look new).
EVENT_ID_NAMESPACE = uuid.UUID("0b6f6a56-6c2e-4f35-9a51-3f0d3b7b2c1e")
TIMEOUT_SECONDS = 30.0


class RelayConfigError(ValueError):
    """A setting the relay needs is missing or malformed; the message names it."""


@dataclass(frozen=True)
class RelayConfig:
    """Where and how to post: the Prefect API URL (a Cloud workspace URL or a self-hosted
    server's ``.../api``), the landing container, and at most one credential."""

    api_url: str
    landing_container: str
    api_key: str | None = None
    auth_string: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RelayConfig:
        env = os.environ if env is None else env
        missing = [k for k in ("PREFECT_API_URL", "MLOPS_LANDING_CONTAINER") if not env.get(k)]
        if missing:
            raise RelayConfigError(f"the relay needs the app settings {', '.join(missing)}")
        key, auth = env.get("PREFECT_API_KEY") or None, env.get("PREFECT_API_AUTH_STRING") or None
        if key and auth:
            raise RelayConfigError("set PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING")
        if auth is not None and ":" not in auth:
            raise RelayConfigError("PREFECT_API_AUTH_STRING must be 'user:password'")
        return cls(env["PREFECT_API_URL"].rstrip("/"), env["MLOPS_LANDING_CONTAINER"], key, auth)

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        if self.auth_string:
            token = base64.b64encode(self.auth_string.encode()).decode()
            return {"Authorization": f"Basic {token}"}
        return {}

    def __repr__(self) -> str:  # never the credential
        return f"RelayConfig(api_url={self.api_url!r}, landing={self.landing_container!r})"


@dataclass(frozen=True)
class RelayResult:
    posted: tuple[str, ...]  # Prefect event ids
    ignored: tuple[str, ...]  # Event Grid ids of events of another type or container


def prefect_event_id(delivery_id: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, delivery_id))


def to_prefect_event(delivery: Mapping[str, Any], landing: str) -> dict[str, Any] | None:
    """The Prefect event for one delivery, or None when it is not for the relay (another
    event type, another container).

    Raises:
        ValueError: A BlobCreated delivery without an id or that names no blob.
    """
    kind = delivery.get("eventType") or delivery.get("type")
    if kind != EVENT_GRID_BLOB_CREATED:
        return None
    if not delivery.get("id"):
        raise ValueError("an Event Grid event without an id cannot be relayed idempotently")
    spec = from_event_grid(delivery)
    if spec.resource.get("azure.storage.container") != landing:
        return None
    occurred = delivery.get("eventTime") or delivery.get("time")
    return {
        "id": prefect_event_id(str(delivery["id"])),
        "occurred": occurred or datetime.now(UTC).isoformat(),
        "event": spec.event,
        "resource": spec.resource,
        "related": spec.related,
        "payload": {**spec.payload, "eventGridId": str(delivery["id"])},
    }


def relay(
    deliveries: Iterable[Mapping[str, Any]],
    config: RelayConfig,
    client: httpx.Client | None = None,
) -> RelayResult:
    """Post the landing container's BlobCreated deliveries to the Prefect API as one batch.

    Raises:
        httpx.HTTPStatusError: The API refused the batch (e.g. 401: the credential);
            the caller fails so Event Grid delivers again.
    """
    events: list[dict[str, Any]] = []
    ignored: list[str] = []
    for delivery in deliveries:
        event = to_prefect_event(delivery, config.landing_container)
        if event is None:
            ignored.append(str(delivery.get("id", "")))
        else:
            events.append(event)
    if events:
        owned = client is None
        http = client or httpx.Client(timeout=TIMEOUT_SECONDS)
        try:
            response = http.post(f"{config.api_url}/events", json=events, headers=config.headers())
            response.raise_for_status()
        finally:
            if owned:
                http.close()
    for event in events:
        logger.info(
            "relayed %s as Prefect event %s",
            event["resource"]["prefect.resource.name"],
            event["id"],
        )
    return RelayResult(tuple(e["id"] for e in events), tuple(ignored))
