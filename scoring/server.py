"""uvicorn, configured so that slow or idle clients cannot hold the service.

uvicorn bounds only the idle time between two requests of a connection (keep-alive). A client
that connects and sends nothing, or sends its headers a byte a second, holds a connection
for ever; enough of them and no one else gets served (slowloris). Here:

- headers must be complete within ``header_timeout`` seconds of a connection's first byte
  (or of its opening, for a client that sends nothing): else ``408`` and the connection closes;
- the body must arrive within ``body_timeout`` (the app answers ``408``, ``scoring.asgi``);
- an idle keep-alive connection closes after ``keep_alive_timeout``;
- at most ``max_connections`` connections are open. When one more comes, the connection
  that has waited longest for a request (its headers incomplete, or idle between two
  requests) is closed to make room, answered ``408`` if it had sent part of a request;
  only when every open connection is in the middle of a request does the newcomer's
  request get ``503`` at once.

Why not uvicorn's ``limit_concurrency``: it counts every open connection, idle or not, and
answers ``503`` to every request past it, so a few hundred connections that send nothing
made the service refuse its real clients (on their own keep-alive connections too) until
the header timeout freed them; attackers reconnecting at once kept it refusing
(tests/faults/scoring/test_under_attack.py). Here the slow ones make room, not the others.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scoring.settings import ScoringSettings

_TIMEOUT_BODY = orjson.dumps(
    {"error": {"code": "request_timeout", "message": "the request headers came too slowly"}}
)
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _TIMEOUT_BODY
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on reading each request's headers and
    a cap on open connections that sheds the slow ones first.

    The deadline starts when the connection opens and again when the first byte of each
    following request arrives (the keep-alive timeout covers the wait before it); it ends
    when the headers are complete. A subclass sets ``header_timeout`` and
    ``max_connections`` (``protocol_class``).
    """

    header_timeout: float = 10.0
    max_connections: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._received = False  # any byte of the pending request yet
        # Since when the connection waits for a request (None: one is in progress).
        self._waiting_since: float | None = time.monotonic()
        self._refuse = False  # over the cap with no one to make room: 503

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            self._make_room(self.max_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received = True
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request of a keep-alive connection
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        self._received = False
        self._waiting_since = None
        if self._refuse:
            self.limit_concurrency = 0  # uvicorn then answers 503 and closes
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._waiting_since = time.monotonic()  # idle until the next request

    def _make_room(self, cap: int) -> None:
        """Close the connections that have waited longest for a request until at most
        ``cap`` are open; if only busy ones are left, this one's request gets 503."""
        open_ = [c for c in self.connections if not c.transport.is_closing()]
        excess = len(open_) - cap
        if excess <= 0:
            return
        waiting = sorted(
            (c for c in open_ if c is not self and isinstance(c, HeaderTimeoutProtocol)),
            key=lambda c: c._waiting_since if c._waiting_since is not None else float("inf"),
        )
        for victim in waiting[:excess]:
            if victim._waiting_since is None:
                break  # in the middle of a request: never cut short
            victim._shed()
            excess -= 1
        if excess > 0:
            self._refuse = True

    def _shed(self) -> None:
        """Close to make room: ``408`` if part of a request came, else just close."""
        self._cancel_header_timer()
        if self._received:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        # A client that sent nothing gets no answer (as nginx does): there is no request.
        if self._received:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def protocol_class(
    header_timeout: float, max_connections: int | None = None
) -> type[HeaderTimeoutProtocol]:
    """``HeaderTimeoutProtocol`` with its deadline and connection cap set (uvicorn
    instantiates the class)."""
    return type(
        "HeaderTimeoutProtocol",
        (HeaderTimeoutProtocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )


def uvicorn_config(app: Any, settings: ScoringSettings) -> Any:
    """The ``uvicorn.Config`` of the service: loopback or container port, bounded clients.

    Args:
        app: The ASGI application.
        settings: The service settings (host, port and the client bounds).

    Returns:
        A ``uvicorn.Config``.
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(settings.header_timeout, settings.max_connections),
        lifespan="on",
        access_log=False,  # the app writes its own JSON request log
        log_config=None,  # keep the JSON handlers set up by the caller
        server_header=False,
        proxy_headers=False,
        ws="none",
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=None,  # the protocol's own cap sheds slow connections first
    )
