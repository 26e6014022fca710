"""A fault-injecting TCP relay in front of an HTTP server (the Prefect API), for tests.

Every connection is piped through unchanged, except connections whose first request is for
a path prefix given a fault:

- ``block(prefix)``: answered ``503`` and closed before anything reaches the server.
  Prefect's events client opens one websocket per connection with ``GET /api/events/in``,
  so blocking that path takes the events API down while the rest of the API keeps
  answering. ``refused`` counts blocked attempts.
- ``swallow(prefix)``: the websocket is accepted (the upgrade, the client's ping and its
  auth handshake reach the server and are answered), then everything the client sends is
  dropped: events, and the pings that would confirm them. A server or proxy that hangs
  after taking the connection, a half-dead link: the client's sends all succeed, nothing
  arrives. ``swallowed`` counts the connections that lost data this way; ``unswallow``
  resets those still open (the client sees the link die and reconnects).

``passed`` counts connections let through, per path prefix asked about.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from tests.utils.net import free_port

UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class FaultyRelay:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.blocked: set[str] = set()
        self.refused: Counter[str] = Counter()
        self.swallowing: set[str] = set()
        self.swallowed: Counter[str] = Counter()
        self._swallowing_links: set[asyncio.StreamWriter] = set()
        self.passed: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="faulty-relay")

    def url(self, path: str = "/api") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def block(self, prefix: str) -> None:
        self.blocked.add(prefix)

    def unblock(self, prefix: str) -> None:
        self.blocked.discard(prefix)

    def swallow(self, prefix: str) -> None:
        """Websockets to ``prefix`` opened from now on lose what the client sends after auth."""
        self.swallowing.add(prefix)

    def unswallow(self, prefix: str) -> None:
        self.swallowing.discard(prefix)
        self._loop.call_soon_threadsafe(self._reset_swallowing_links)

    def _reset_swallowing_links(self) -> None:
        for writer in self._swallowing_links:
            writer.transport.abort()
        self._swallowing_links.clear()

    @contextmanager
    def running(self) -> Iterator[FaultyRelay]:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the relay did not start")
        try:
            yield self
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:  # connections still piped: closed with the relay
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n")  # the request line: METHOD PATH VERSION
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        parts = head.split(b" ")
        path = parts[1].decode("latin-1") if len(parts) > 2 else ""
        for prefix in list(self.blocked):
            if path.startswith(prefix):
                self.refused[prefix] += 1
                with suppress(ConnectionError):
                    await reader.read(65536)  # the rest of the request head, unread
                    writer.write(UNAVAILABLE)
                    await writer.drain()
                writer.close()
                return
        self.passed[path.split("?")[0]] += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        up_writer.write(head)
        swallowing = [p for p in self.swallowing if path.startswith(p)]
        if not swallowing:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        authenticated = asyncio.Event()

        def lost() -> None:
            self.swallowed[swallowing[0]] += 1

        self._swallowing_links.add(writer)
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, drop_after=authenticated, on_drop=lost),
                _pipe_until_text_frame(up_reader, writer, authenticated),
            )
        finally:
            self._swallowing_links.discard(writer)
            up_writer.close()


async def _pipe_until_text_frame(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: asyncio.Event
) -> None:
    """Copy a websocket server's answers to the client, setting ``seen`` at its first text
    message (for Prefect's events API: the auth result, after the upgrade and the pong)."""
    try:
        writer.write(await reader.readuntil(b"\r\n\r\n"))  # the 101 Switching Protocols
        while not seen.is_set():
            header = await reader.readexactly(2)  # server frames are not masked
            size = header[1] & 0x7F
            extended = await reader.readexactly({126: 2, 127: 8}.get(size, 0))
            length = int.from_bytes(extended, "big") if extended else size
            writer.write(header + extended + await reader.readexactly(length))
            await writer.drain()
            if header[0] & 0x0F == 0x1:  # a text frame
                seen.set()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        with suppress(Exception):
            writer.close()
        return
    await _pipe(reader, writer)


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    drop_after: asyncio.Event | None = None,
    on_drop: Callable[[], None] | None = None,
) -> None:
    """Copy ``reader`` to ``writer``; once ``drop_after`` is set, read and drop instead."""
    dropped = False
    try:
        while data := await reader.read(65536):
            if drop_after is not None and drop_after.is_set():
                if not dropped and on_drop is not None:
                    on_drop()
                dropped = True
                continue
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with suppress(Exception):
            writer.close()
