"""The little HTTP the service needs, straight on ASGI: request headers, bounded body, reply.

A framework's request object, router and middleware stack cost more than predicting a row
of a linear model; this module does only what the routes use.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from scoring.schemas import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_WANTED = frozenset(
    {
        b"authorization",
        b"content-type",
        b"content-length",
        b"x-request-id",
        b"x-ms-request-id",
        b"traceparent",
    }
)
# A client's request id is echoed in headers and logs: keep it short and harmless.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class ClientDisconnected(Exception):
    """The client went away before its body was read."""


class Response(NamedTuple):
    """What a handler returns."""

    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass
class Request:
    """The parts of an HTTP request the handlers use.

    Attributes:
        method: HTTP method.
        path: Request path.
        headers: The few headers the service reads, lowercase names, latin-1 decoded.
        receive: The ASGI receive callable (for the body).
        request_id: The client's ``X-Request-Id`` (or ``X-Ms-Request-Id``) or a new one.
        rows: Rows scored, for the request log.
        error: Error code of a refused request, for the request log.
        payload: Rows and predictions to log (only when payload logging is on).
    """

    method: str
    path: str
    headers: dict[bytes, str]
    receive: Receive = field(repr=False)
    request_id: str = ""
    rows: int | None = None
    error: str | None = None
    payload: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        """Build a request from an ASGI HTTP scope."""
        headers = {
            name: value.decode("latin-1") for name, value in scope["headers"] if name in _WANTED
        }
        rid = headers.get(b"x-request-id") or headers.get(b"x-ms-request-id") or ""
        if not _REQUEST_ID.match(rid):
            rid = secrets.token_hex(16)
        return cls(scope["method"], scope["path"], headers, receive, rid)


async def read_body(request: Request, max_bytes: int, timeout: float | None = None) -> bytes:
    """Read the whole body, refusing more than ``max_bytes`` before and while reading.

    Args:
        request: The request whose body to read.
        max_bytes: Largest body accepted.
        timeout: Seconds the whole body may take to arrive (None: no limit). A client that
            sends a byte a second must not hold a connection for ever.

    Raises:
        ApiError: 400 for a malformed Content-Length, 413 when the body is too large, 408
            when it does not arrive within ``timeout`` (the connection is then closed).
        ClientDisconnected: The client closed the connection mid-body.
    """
    declared = request.headers.get(b"content-length")
    if declared is not None:
        if not (declared.isascii() and declared.strip().isdigit()):
            raise ApiError(400, "invalid_content_length", "Content-Length is not a number")
        if int(declared) > max_bytes:
            raise _too_large(max_bytes)
    try:
        async with asyncio.timeout(timeout):
            return await _receive_body(request, max_bytes)
    except TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            f"the request body did not arrive within {timeout:g} s",
            {"connection": "close"},  # the rest of the body may still come: do not reuse
        ) from None


async def _receive_body(request: Request, max_bytes: int) -> bytes:
    message = await request.receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
        return bytes(body)
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body is larger than {max_bytes} bytes")


async def send_response(send: Send, response: Response, request_id: str) -> None:
    """Send a complete response with Content-Type, Content-Length and the request id."""
    rid = request_id.encode("latin-1")
    headers = [
        (b"content-type", response.content_type),
        (b"content-length", str(len(response.body)).encode()),
        (b"x-request-id", rid),
        (b"x-ms-request-id", rid),
        *response.headers,
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
