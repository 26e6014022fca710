"""A fault-injecting TCP relay in front of an HTTP server (the Prefect API), for tests.

Every connection is piped through unchanged, except connections whose first request is for
a blocked path prefix (``block("/api/events/in")``): while blocked, those are answered
``503`` and closed before anything reaches the server. Prefect's events client opens one
websocket per connection with ``GET /api/events/in``, so blocking that path takes the events
API down while the rest of the API keeps answering. ``refused`` counts blocked attempts;
``passed`` counts connections let through, per path prefix asked about.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.utils.net import free_port

UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class FaultyRelay:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.blocked: set[str] = set()
        self.refused: Counter[str] = Counter()
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
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with suppress(Exception):
            writer.close()
