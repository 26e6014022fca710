"""Load and attack generators for the scoring service, each run as a process of its own.

``python -m tests.utils.loadgen OUT load URL KEY SECONDS CONNECTIONS``: closed-loop saturation
load. ``CONNECTIONS`` keep-alive connections each send ``POST /score`` again as soon as the
previous answer arrived, for ``SECONDS``; writes one JSON object to the file ``OUT``: every
request's status and latency (``0`` for a request that got no complete answer: reset,
closed, timed out).

``python -m tests.utils.loadgen OUT attack URL KEY SECONDS IDLE HEADS BODIES``: slow clients.
``IDLE`` connections send nothing, ``HEADS`` send a ``POST /score``'s headers a byte a
second, ``BODIES`` send the headers at once and then the body a byte a second. A connection
the service closes is opened again at once, for ``SECONDS``; then the last ones are waited
for (up to 5 s more). Writes to ``OUT``, per connection: its kind, how long it stayed open,
whether the service closed it, and the first bytes of what it was told.

Why Python rather than wrk: the test needs every request's own status and latency (wrk
reports percentiles and a count of non-2xx, not which status a refused client got), and the
attackers are byte-level clients wrk cannot be; asyncio on uvloop over raw sockets is cheap
enough to saturate one service process from one core. Each runs in its own process so that
neither shares an event loop (or a GIL) with the service or with the other.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

ROW = [0.038, 0.05, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.02, -0.018]
BODY = json.dumps({"data": [ROW]}).encode()
REQUEST_TIMEOUT = 10.0


def _request(host: str, key: str) -> bytes:
    return (
        f"POST /score HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the answer read, and whether the service closes the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status, b"\r\nconnection: close" in head.lower()


async def _load_connection(
    host: str, port: int, request: bytes, until: float, results: list[tuple[int, float]]
) -> None:
    writer = None
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status, closing = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            status, closing = 0, True  # no complete answer: a failed request
        results.append((status, time.monotonic() - started))
        if closing and writer is not None:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def load(url: str, key: str, seconds: float, connections: int) -> dict[str, object]:
    """Closed-loop load: ``connections`` clients, each one request at a time."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = _request(host, key)
    results: list[tuple[int, float]] = []
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(_load_connection(host, port, request, until, results) for _ in range(connections))
    )
    return {"statuses": [s for s, _ in results], "latencies": [t for _, t in results]}


async def _attacker(
    kind: str,
    host: str,
    port: int,
    request: bytes,
    until: float,
    grace: float,
    out: list[dict[str, object]],
) -> None:
    head, _, body = request.partition(b"\r\n\r\n")
    head += b"\r\n\r\n"
    first, drip = {"idle": (b"", b""), "heads": (b"", head), "bodies": (head, body)}[kind]
    while time.monotonic() < until:
        opened = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            out.append({"kind": kind, "open": 0.0, "closed": False, "reply": "connect failed"})
            await asyncio.sleep(0.1)
            continue
        received = asyncio.ensure_future(reader.read(200))
        try:
            writer.write(first)
            for byte in drip:
                await asyncio.wait([received], timeout=1.0)
                if received.done() or time.monotonic() > until:
                    break
                writer.write(bytes([byte]))
            # Sent all it will (or was answered): give the service until the end to end it.
            await asyncio.wait([received], timeout=max(0.0, until + grace - time.monotonic()))
        except OSError:
            pass
        reply = b""
        closed = received.done()
        if closed and not received.cancelled() and received.exception() is None:
            reply = received.result()
        received.cancel()
        writer.close()
        out.append(
            {
                "kind": kind,
                "open": time.monotonic() - opened,
                "closed": closed,
                "reply": reply[:60].decode("latin-1"),
            }
        )


async def attack(
    url: str, key: str, seconds: float, idle: int, heads: int, bodies: int, grace: float = 5.0
) -> dict[str, object]:
    """Slow clients until ``seconds`` have passed, each reopened when the service drops it;
    then ``grace`` seconds more for the service to drop the last ones."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = _request(host, key)
    out: list[dict[str, object]] = []
    until = time.monotonic() + seconds
    kinds = ["idle"] * idle + ["heads"] * heads + ["bodies"] * bodies
    lags: list[float] = []

    async def lag() -> None:  # how late this process's own timers fire (a busy machine)
        while time.monotonic() < until + grace:
            before = time.monotonic()
            await asyncio.sleep(0.05)
            lags.append(time.monotonic() - before - 0.05)

    ticker = asyncio.ensure_future(lag())
    await asyncio.gather(*(_attacker(k, host, port, request, until, grace, out) for k in kinds))
    ticker.cancel()
    return {"connections": out, "lag": max(lags, default=0.0)}


def main(argv: list[str]) -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio is slower, not wrong
        pass
    out, mode, url, key, seconds, *counts = argv
    if mode == "load":
        result = asyncio.run(load(url, key, float(seconds), int(counts[0])))
    else:
        result = asyncio.run(attack(url, key, float(seconds), *map(int, counts)))
    with open(out, "w", encoding="utf-8") as file:  # not stdout: uvloop may leave it
        json.dump(result, file)  # non-blocking, and a big result is then cut short
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
