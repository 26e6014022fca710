"""Slow and idle clients cannot hold the service (slowloris): a real process on loopback.

Idle connections, headers sent a byte at a time and bodies sent a byte at a time get a 408 or
are closed within their timeouts, while normal requests keep succeeding quickly; past the
connection cap new requests get 503 at once rather than waiting.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.utils.scoring_process import scoring_service

ROW = [0.038, 0.05, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.02, -0.018]
BODY = json.dumps({"data": [ROW]}).encode()
TIMEOUTS = {"header_timeout": 1, "body_timeout": 1, "keep_alive_timeout": 1}
GIVE_UP = 6.0  # seconds a slow client keeps trying; the service must end it well before


async def _slow_client(host: str, port: int, head: bytes, drip: bytes) -> tuple[bytes, bool]:
    """Send ``head`` at once, then ``drip`` a byte every 0.2 s; return what came back and
    whether the service closed the connection before ``GIVE_UP``."""
    reader, writer = await asyncio.open_connection(host, port)
    received = asyncio.ensure_future(reader.read(4096))
    closed = False
    try:
        writer.write(head)
        deadline = time.monotonic() + GIVE_UP
        for byte in drip:
            if received.done() or time.monotonic() > deadline:
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait([received], timeout=0.2)
        left = max(0.0, deadline - time.monotonic())
        await asyncio.wait([received], timeout=left)
        data = received.result() if received.done() and not received.exception() else b""
        if received.done():  # read more until EOF: the connection must end
            data += await _read_until_closed(reader)
            closed = True
        return data, closed
    finally:
        received.cancel()
        writer.close()


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What arrives before EOF or a reset (a close while we were still sending).

    Read in pieces: ``reader.read()`` drops what it buffered when a reset follows the
    answer's last bytes (CI saw a 408's headers without its body that way).
    """
    data = b""
    try:
        async with asyncio.timeout(2):
            while chunk := await reader.read(4096):
                data += chunk
    except ConnectionError:
        pass
    return data


Slow = list[tuple[bytes, bool]]


async def _attack_and_serve(url: str, key: str) -> tuple[dict[str, Slow], list[tuple[int, float]]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = (
        f"POST /score HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode()
    idle = [_slow_client(host, port, b"", b"") for _ in range(30)]
    slow_heads = [_slow_client(host, port, b"", headers) for _ in range(15)]
    slow_bodies = [_slow_client(host, port, headers, BODY) for _ in range(15)]

    async def normal_traffic() -> list[tuple[int, float]]:
        results = []
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await asyncio.sleep(0.3)  # the slow clients are connected by now
            for _ in range(40):
                started = time.monotonic()
                response = await client.post("/score", content=BODY, headers=auth)
                results.append((response.status_code, time.monotonic() - started))
                await asyncio.sleep(0.1)
        return results

    idled, heads, bodies, normal = await asyncio.gather(
        asyncio.gather(*idle), asyncio.gather(*slow_heads), asyncio.gather(*slow_bodies),
        normal_traffic(),
    )  # fmt: skip
    return {"idle": idled, "heads": heads, "bodies": bodies}, normal


def test_slow_clients_are_cut_off_and_others_served(
    model_dir: Path, model_sha: str, api_key: str
) -> None:
    with scoring_service(model_dir, model_sha, api_key, **TIMEOUTS) as service:
        slow, normal = asyncio.run(_attack_and_serve(service.url, api_key))
    assert [status for status, _ in normal] == [200] * 40
    assert max(seconds for _, seconds in normal) < 2.0
    for kind, results in slow.items():
        for data, closed in results:
            assert closed, f"a {kind} client still held its connection after {GIVE_UP} s"
            assert data == b"" or data.startswith(b"HTTP/1.1 408 "), (kind, data[:80])
    # Clients that sent their headers are told why (unless a reset overtook the answer).
    told = [data for data, _ in slow["bodies"] if data]
    assert len(told) >= len(slow["bodies"]) // 2
    assert all(b'"request_timeout"' in data for data in told)
    assert "Traceback" not in service.output


async def _hold_then_request(url: str, holders: int, head: bytes) -> tuple[int, float, bytes]:
    """Open ``holders`` connections that send ``head``, then make one normal request;
    return its status, how long it took, and what the first holder was told."""
    parts = urlsplit(url)
    conns = [await asyncio.open_connection(parts.hostname, parts.port) for _ in range(holders)]
    try:
        for _, writer in conns:
            writer.write(head)
            await writer.drain()
        await asyncio.sleep(0.2)  # the service has read what they sent
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            started = time.monotonic()
            status = (await client.get("/healthz")).status_code
            waited = time.monotonic() - started
        reader = conns[0][0]
        told = await asyncio.wait_for(reader.read(200), timeout=3)
    finally:
        for _, writer in conns:
            writer.close()
    return status, waited, told


def _post_head(url: str, key: str) -> bytes:
    return (
        f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode()


def test_at_the_connection_cap_the_longest_waiting_connection_makes_room(
    model_dir: Path, model_sha: str, api_key: str
) -> None:
    """Connections that have sent no complete request are closed to serve a new one (the
    oldest first, 408 if it had sent part of a request): idle ones cannot lock clients out."""
    with scoring_service(model_dir, model_sha, api_key, max_connections=8, **TIMEOUTS) as service:
        status, waited, told = asyncio.run(_hold_then_request(service.url, 8, b""))
        assert status == 200 and waited < 1.0
        assert told == b""  # it had sent nothing: closed without an answer
        status, waited, told = asyncio.run(_hold_then_request(service.url, 8, b"POST /sc"))
        assert status == 200 and waited < 1.0
        assert told.startswith(b"HTTP/1.1 408 ")


def test_past_the_connection_cap_of_busy_connections_requests_get_503_at_once(
    model_dir: Path, model_sha: str, api_key: str
) -> None:
    """When every open connection is in the middle of a request (headers in, body awaited),
    none is cut short: the newcomer gets 503 at once, and is served once they are done."""
    with scoring_service(model_dir, model_sha, api_key, max_connections=8, **TIMEOUTS) as service:
        head = _post_head(service.url, api_key)
        status, waited, told = asyncio.run(_hold_then_request(service.url, 8, head))
        assert status == 503 and waited < 1.0
        assert told.startswith(b"HTTP/1.1 408 ")  # its body never came: body timeout
        assert httpx.get(service.url + "/healthz", timeout=5).status_code == 200
