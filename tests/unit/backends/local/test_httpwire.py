"""HTTP/1.1 framing used by the proxy: parsing, body framing, refusals, hop-by-hop headers."""

from __future__ import annotations

import asyncio

import pytest

from backends.local.httpwire import (
    HttpError,
    Message,
    end_to_end,
    read_body,
    read_request,
)


def _reader(data: bytes, limit: int = 64 * 1024) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _request(data: bytes, max_body: int = 1000, limit: int = 64 * 1024) -> Message | None:
    async def run() -> Message | None:
        reader = _reader(data, limit)
        msg = await read_request(reader)
        if msg is not None:
            await read_body(reader, msg, max_body)
        return msg

    return asyncio.run(run())


def test_a_request_with_content_length() -> None:
    msg = _request(b"POST /score?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcTAIL")
    assert msg is not None
    assert (msg.method, msg.target, msg.version) == (b"POST", b"/score?x=1", b"HTTP/1.1")
    assert msg.get(b"host") == b"a" and msg.body == b"abc" and msg.keep_alive


def test_a_chunked_request_with_extensions_and_trailers() -> None:
    data = (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    msg = _request(data)
    assert msg is not None and msg.body == b"abc0123456789"


def test_clean_end_of_stream_between_requests() -> None:
    assert _request(b"") is None
    assert _request(b"\r\n") is None


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad name : 1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", 400),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 200 + b"\r\n\r\n", 431),
    ],
)
def test_ambiguous_or_oversized_requests_are_refused(data: bytes, status: int) -> None:
    with pytest.raises(HttpError) as info:
        _request(data, limit=128)
    assert info.value.status == status


def test_a_response_body_can_run_to_the_end_of_the_connection() -> None:
    async def run() -> Message:
        msg = Message(b"HTTP/1.0 200 OK", [], version=b"HTTP/1.0", status=200)
        await read_body(_reader(b"all of it"), msg, 100, response=True)
        return msg

    msg = asyncio.run(run())
    assert msg.body == b"all of it" and msg.until_eof


@pytest.mark.parametrize(
    ("version", "connection", "keep"),
    [
        (b"HTTP/1.1", None, True),
        (b"HTTP/1.1", b"Close", False),
        (b"HTTP/1.0", None, False),
        (b"HTTP/1.0", b"keep-alive", True),
    ],
)
def test_keep_alive_follows_version_and_connection(
    version: bytes, connection: bytes | None, keep: bool
) -> None:
    headers = [(b"Connection", connection)] if connection else []
    assert Message(b"", headers, version=version).keep_alive is keep


def test_hop_by_hop_headers_are_not_forwarded() -> None:
    msg = Message(
        b"",
        [
            (b"Connection", b"keep-alive, X-Secret-Hop"),
            (b"X-Secret-Hop", b"1"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Content-Length", b"3"),
            (b"Authorization", b"Bearer k"),
            (b"Content-Type", b"application/json"),
        ],
    )
    names = [k for k, _ in end_to_end(msg)]
    assert names == [b"Authorization", b"Content-Type"]
