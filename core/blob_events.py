"""The ``azure.storage.blob.created`` Prefect event: one shape for every route it takes.

The blob watcher (``flows.blob_watcher``) emits it for blobs it finds by polling; in Azure, a
relay emits it for each Event Grid ``Microsoft.Storage.BlobCreated`` delivery
(``from_event_grid``). Either way the retraining deployment's trigger sees the same event:

- ``resource``: ``prefect.resource.id`` = the blob URL, ``prefect.resource.name`` = the blob
  name, ``azure.storage.container``, ``azure.storage.account``;
- ``related``: ``azure.storage.container.<account>.<container>`` (role ``container``) and
  ``azure.storage.account.<account>`` (role ``account``);
- ``payload``: Event Grid's ``BlobCreated`` data fields (``api``, ``url``, ``eTag``,
  ``contentLength``, ``blobType``...) plus ``container`` and ``name``.

Free of Prefect and of cloud SDKs, so a relay can build the event without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from core.events import BLOB_CREATED, EventSpec
from core.interfaces import BlobRef

__all__ = ["BLOB_CREATED", "EVENT_GRID_BLOB_CREATED", "EventSpec", "event_for", "from_event_grid"]

EVENT_GRID_BLOB_CREATED = "Microsoft.Storage.BlobCreated"


def account_of(url: str, container: str) -> str:
    """The storage account of a blob URL: the first host label in Azure
    (``https://<account>.blob.core.windows.net/...``), the first path segment for path-style
    endpoints such as Azurite (``http://127.0.0.1:10000/<account>/...``)."""
    endpoint = url.split(f"/{quote(container)}/", 1)[0]
    parts = urlsplit(endpoint)
    path = parts.path.strip("/")
    if path:
        return path.rsplit("/", 1)[-1]
    return (parts.hostname or "").split(".", 1)[0]


def blob_created_event(
    *,
    url: str,
    account: str,
    container: str,
    name: str,
    etag: str,
    size: int,
    api: str = "PutBlob",
    blob_type: str = "BlockBlob",
    extra: Mapping[str, Any] | None = None,
) -> EventSpec:
    """The ``azure.storage.blob.created`` event: the blob URL as resource id, its container and
    account as related resources, and Event Grid's ``BlobCreated`` data fields as payload
    (``extra``: more of them, e.g. ``contentType`` or ``sequencer`` from a real delivery)."""
    return EventSpec(
        event=BLOB_CREATED,
        resource={
            "prefect.resource.id": url,
            "prefect.resource.name": name,
            "azure.storage.container": container,
            "azure.storage.account": account,
        },
        related=[
            {
                "prefect.resource.id": f"azure.storage.container.{account}.{container}",
                "prefect.resource.role": "container",
            },
            {
                "prefect.resource.id": f"azure.storage.account.{account}",
                "prefect.resource.role": "account",
            },
        ],
        payload={
            **(extra or {}),
            "api": api,
            "url": url,
            "eTag": etag,
            "contentLength": size,
            "blobType": blob_type,
            "container": container,
            "name": name,
        },
    )


def event_for(ref: BlobRef) -> EventSpec:
    """The event announcing ``ref`` (a listed blob). Its payload also carries the blob's
    ``lastModified`` (ISO 8601; not an Event Grid data field): when it landed, so the
    pipeline's breakdown (``core.breakdown``) can tell detection from what followed."""
    modified = ref.last_modified
    return blob_created_event(
        url=ref.uri,
        account=account_of(ref.uri, ref.container),
        container=ref.container,
        name=ref.name,
        etag=ref.etag,
        size=ref.size,
        extra={"lastModified": modified.isoformat()} if modified is not None else None,
    )


def from_event_grid(delivery: Mapping[str, Any]) -> EventSpec:
    """The same event from an Event Grid ``Microsoft.Storage.BlobCreated`` event, in the Event
    Grid schema (``eventType``, ``topic``) or the CloudEvents 1.0 schema (``type``,
    ``source``). This is all a relay (e.g. an Azure Function) needs.

    Raises:
        ValueError: Another event type, or a subject that names no blob.
    """
    kind = delivery.get("eventType") or delivery.get("type")
    if kind != EVENT_GRID_BLOB_CREATED:
        raise ValueError(f"not a {EVENT_GRID_BLOB_CREATED} event: {kind!r}")
    data: Mapping[str, Any] = delivery["data"]
    # subject: /blobServices/default/containers/<container>/blobs/<name>
    _, _, rest = str(delivery.get("subject", "")).partition("/containers/")
    container, _, name = rest.partition("/blobs/")
    if not container or not name:
        raise ValueError(f"subject names no blob: {delivery.get('subject')!r}")
    source = str(delivery.get("topic") or delivery.get("source") or "")
    _, found, account = source.rpartition("/storageAccounts/")
    url = str(data["url"])
    return blob_created_event(
        url=url,
        account=account if found else account_of(url, container),
        container=container,
        name=name,
        etag=str(data.get("eTag", "")),
        size=int(data.get("contentLength", 0)),
        api=str(data.get("api", "PutBlob")),
        blob_type=str(data.get("blobType", "BlockBlob")),
        extra=data,
    )
