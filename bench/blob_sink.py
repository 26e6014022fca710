"""A stand-in for a remote Blob service, for the collection benchmark: it answers every
``PUT`` with 201 after reading the body, and keeps only counts (``GET``).

Why: in Azure the ``collected`` container is a remote service, so the scoring host pays for
sending a window, not for storing it. The local Azurite of ``bench/collect.py`` runs on the
benchmark's own 2 cores and spent 40-170 µs of CPU per collected 100-row request, which the
ratio on/off then charges to the service. Measured against this sink, the ratio is what
collection costs the service itself; ``--collect-sink azurite`` measures the co-located
stack instead. A raw ASGI app under uvicorn (already a dependency of the service), not a
server of our own.

    python -m uvicorn bench.blob_sink:app --factory --host 127.0.0.1 --port PORT --no-access-log
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class BlobSink:
    """The ASGI app: ``PUT /<container>/<blob>`` -> 201; ``GET`` -> the counts."""

    def __init__(self) -> None:
        self.stats = {"puts": 0, "bytes": 0, "lines": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await _answer(send, 200, orjson.dumps(self.stats))
            return
        if scope["method"] != "PUT":
            await _answer(send, 405, b"")
            return
        more = True
        while more:
            message = await receive()
            body = message.get("body", b"")
            self.stats["bytes"] += len(body)
            self.stats["lines"] += body.count(b"\n")
            more = message.get("more_body", False)
        self.stats["puts"] += 1
        await _answer(send, 201, b"")


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def app() -> BlobSink:
    """uvicorn's ``--factory``: one sink per server process."""
    return BlobSink()
