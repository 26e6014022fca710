"""A load generator in its own process: ``python saturate.py URL KEY_FILE CONNECTIONS``.

Each of CONNECTIONS keep-alive connections posts a one-row ``/score`` as soon as the last
answer arrived (no pacing: as hard as this process can), and records what it got: the model
version that answered, or ``ERR:...``. It prints ``ready`` once every connection has 10
answers; on SIGTERM (or after 300 s) it stops and prints the sequences as one JSON line.

Plain asyncio streams, not an HTTP library: a client library costs several times more CPU per
request, and the point is to push HAProxy and the replicas to saturation on 2 cores. A
dropped connection is a failure (``ERR``) and the worker reconnects; a response with
``Connection: close`` is not (the next request opens a new connection).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROW = [0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.0, 0.02, -0.02]
MAX_SECONDS = 300.0  # a bound, should a test never stop it
READY_AFTER = 10


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str], bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def _worker(host: str, port: int, request: bytes, seq: list[str], stop: asyncio.Event):
    reader = writer = None
    while not stop.is_set():
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            status, headers, body = await asyncio.wait_for(_exchange(reader, writer, request), 10)
            if status == 200:
                seq.append(str(json.loads(body)["model"]["version"]))
            else:
                seq.append(f"ERR:{status}:{body[:80]!r}")
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader = writer = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            seq.append(f"ERR:{exc!r}")
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def main(url: str, key: str, connections: int) -> list[list[str]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps({"data": [ROW]}).encode()
    request = (
        f"POST /score HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(MAX_SECONDS, stop.set)
    sequences: list[list[str]] = [[] for _ in range(connections)]
    tasks = [asyncio.create_task(_worker(host, port, request, s, stop)) for s in sequences]
    while not stop.is_set() and min(len(s) for s in sequences) < READY_AFTER:
        await asyncio.sleep(0.01)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.gather(*tasks)
    return sequences


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], Path(sys.argv[2]).read_text().strip(), int(sys.argv[3])))
    sys.stdout.write(json.dumps(result) + "\n")
