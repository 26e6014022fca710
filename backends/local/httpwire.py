"""HTTP/1.1 message framing on asyncio streams, just what the local proxy needs (RFC 9112).

Whole messages are read into memory (scoring payloads are small and bounded). Bodies are
framed by ``Transfer-Encoding: chunked``, ``Content-Length``, or (responses only) the end
of the connection. Anything ambiguous is refused with a 4xx rather than guessed at, which
also closes the usual request-smuggling holes (both framings, conflicting lengths).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024  # the StreamReader limit; a longer head fails readuntil
# Headers that describe one connection, not the message (RFC 9110 section 7.6.1). Framing
# headers are listed too: the proxy always re-frames with its own Content-Length.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"content-length",
    }
)


class HttpError(Exception):
    """A malformed or unacceptable message; ``status`` is what to answer the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Message:
    """One request or response: start line, headers (names as sent), body."""

    start: bytes
    headers: list[tuple[bytes, bytes]]
    version: bytes = b"HTTP/1.1"
    method: bytes = b""  # requests
    target: bytes = b""  # requests
    status: int = 0  # responses
    body: bytes = b""
    until_eof: bool = False  # a response body that ran to the end of the connection

    def get(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def tokens(self, name: bytes) -> set[bytes]:
        """Comma-separated tokens of every ``name`` header, lower-cased."""
        values = (v for k, v in self.headers if k.lower() == name)
        return {t.strip().lower() for v in values for t in v.split(b",") if t.strip()}

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another message after this one."""
        conn = self.tokens(b"connection")
        if self.version == b"HTTP/1.1":
            return b"close" not in conn
        return b"keep-alive" in conn


async def read_head(reader: asyncio.StreamReader) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """Read a start line and headers; None on a clean end of stream before any byte."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise
    except asyncio.LimitOverrunError:
        raise HttpError(431, "header section too large") from None
    lines = raw.lstrip(b"\r\n")[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or line[:1] in b" \t":
            raise HttpError(400, "malformed header line")
        headers.append((name, value.strip()))
    return lines[0], headers


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise HttpError(400, "line too long") from None


async def _read_chunked(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    body = bytearray()
    while True:
        size_line = (await _line(reader)).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise HttpError(400, "bad chunk size") from None
        if size == 0:
            while await _line(reader) != b"\r\n":
                pass  # trailer fields: dropped
            return bytes(body)
        if len(body) + size > max_bytes:
            raise HttpError(413, "body too large")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError(400, "bad chunk terminator")


async def read_body(
    reader: asyncio.StreamReader, msg: Message, max_bytes: int, *, response: bool = False
) -> None:
    """Read ``msg``'s body (framed as its headers say) into ``msg.body``."""
    codings = msg.tokens(b"transfer-encoding")
    lengths = {v.strip() for k, v in msg.headers if k.lower() == b"content-length"}
    if codings:
        if lengths and not response:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if codings != {b"chunked"}:
            raise HttpError(501, "unsupported transfer coding")
        msg.body = await _read_chunked(reader, max_bytes)
    elif lengths:
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise HttpError(400, "bad Content-Length")
        size = int(next(iter(lengths)))
        if size > max_bytes:
            raise HttpError(413, "body too large")
        msg.body = await reader.readexactly(size)
    elif response:
        body = bytearray()
        while chunk := await reader.read(65536):
            body += chunk
            if len(body) > max_bytes:
                raise HttpError(502, "upstream body too large")
        msg.body, msg.until_eof = bytes(body), True


async def read_request(reader: asyncio.StreamReader) -> Message | None:
    """Read one request head (the body comes from ``read_body``); None when the client
    closed the connection between requests."""
    head = await read_head(reader)
    if head is None:
        return None
    parts = head[0].split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1]:
        raise HttpError(400, "bad request line")
    return Message(head[0], head[1], version=parts[2], method=parts[0], target=parts[1])


def status_of(start: bytes) -> tuple[bytes, int]:
    """The HTTP version and status code of a status line."""
    parts = start.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(502, "bad status line from upstream")
    return parts[0], int(parts[1])


def has_no_body(method: bytes, status: int) -> bool:
    """Responses that never carry a body, whatever their headers say."""
    return method == b"HEAD" or status < 200 or status in (204, 304)


def serialize(start: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """Start line, headers and body as bytes to write (the caller adds framing headers)."""
    lines = [start, *(k + b": " + v for k, v in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def end_to_end(msg: Message) -> list[tuple[bytes, bytes]]:
    """``msg``'s headers minus hop-by-hop ones (including those its Connection header names)."""
    named = msg.tokens(b"connection")
    return [(k, v) for k, v in msg.headers if k.lower() not in HOP_BY_HOP | named]


def error_response(status: int, close: bool = True) -> bytes:
    """A complete plain-text error response (with ``Connection: close`` if ``close``)."""
    line = f"{status} {HTTPStatus(status).phrase}"
    text = f"{line}\n".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    return serialize(f"HTTP/1.1 {line}".encode(), headers, text)
