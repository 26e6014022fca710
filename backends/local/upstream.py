"""Keep-alive connections from the proxy to its upstreams (the replicas)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from backends.local.httpwire import (
    MAX_HEAD_BYTES,
    Message,
    end_to_end,
    has_no_body,
    read_body,
    read_head,
    serialize,
    status_of,
)

CONNECT_SECONDS = 2.0
# Shorter than the replicas' own idle timeout (uvicorn: 5 s), so that we, not they, close
# idle connections: otherwise a request can race the replica's close.
UPSTREAM_IDLE_SECONDS = 2.0

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class UpstreamPool:
    """Keep-alive connections to upstreams (``http://host:port``), one request at a time each.

    Args:
        max_body: Largest response body accepted.
        timeout: Seconds to wait for a whole response once the request is sent.
    """

    def __init__(self, max_body: int, timeout: float) -> None:
        self.max_body = max_body
        self.timeout = timeout
        self._idle: dict[str, list[tuple[Conn, float]]] = {}

    def forget(self, keep: Iterable[str]) -> None:
        """Close idle connections to every upstream not in ``keep``."""
        for upstream in set(self._idle) - set(keep):
            for (_, writer), _since in self._idle.pop(upstream):
                writer.close()

    def _pooled(self, upstream: str) -> Conn | None:
        idle = self._idle.get(upstream, [])
        while idle:
            (reader, writer), since = idle.pop()
            if time.monotonic() - since < UPSTREAM_IDLE_SECONDS and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    @staticmethod
    async def _open(upstream: str) -> Conn:
        url = urlsplit(upstream)
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(url.hostname, url.port, limit=MAX_HEAD_BYTES),
                CONNECT_SECONDS,
            )
        except TimeoutError:
            raise ConnectionError(f"connect to {upstream} timed out") from None

    async def exchange(self, upstream: str, req: Message, client_ip: bytes) -> Message:
        """Send ``req`` to ``upstream`` and read the whole response.

        A pooled connection that fails before answering (the upstream closed it while idle)
        is replaced by a fresh one once, as HTTP clients do.

        Raises:
            TimeoutError: No complete response within ``timeout`` (do not resend).
            OSError, asyncio.IncompleteReadError: The connection failed (safe to resend).
            HttpError: The upstream's response is malformed or too large.
        """
        headers = end_to_end(req)
        if req.body or req.method in (b"POST", b"PUT", b"PATCH"):
            headers.append((b"content-length", str(len(req.body)).encode()))
        if client_ip:
            headers.append((b"x-forwarded-for", client_ip))
        if req.get(b"host") is None:
            headers.append((b"host", urlsplit(upstream).netloc.encode()))
        data = serialize(b" ".join((req.method, req.target, b"HTTP/1.1")), headers, req.body)
        pooled = self._pooled(upstream)
        if pooled is not None:
            try:
                return await self._send(upstream, pooled, data, req.method)
            except TimeoutError:
                raise
            except (OSError, asyncio.IncompleteReadError):
                pass
        return await self._send(upstream, await self._open(upstream), data, req.method)

    async def _send(self, upstream: str, conn: Conn, data: bytes, method: bytes) -> Message:
        reader, writer = conn
        try:
            writer.write(data)
            await writer.drain()
            resp = await asyncio.wait_for(self._read_response(reader, method), self.timeout)
        except BaseException:
            writer.close()
            raise
        if resp.keep_alive and not resp.until_eof:
            self._idle.setdefault(upstream, []).append((conn, time.monotonic()))
        else:
            writer.close()
        return resp

    async def _read_response(self, reader: asyncio.StreamReader, method: bytes) -> Message:
        while True:
            head = await read_head(reader)
            if head is None:
                raise ConnectionError("upstream closed the connection before answering")
            version, status = status_of(head[0])
            if not 100 <= status < 200:
                break  # interim 1xx answers are skipped (Expect and Upgrade are not forwarded)
        resp = Message(head[0], head[1], version=version, status=status)
        if not has_no_body(method, status):
            await read_body(reader, resp, self.max_body, response=True)
        return resp
