"""The proxy process on its own: per-request routing over keep-alive connections, switching,
draining, retries, HTTP/1.1 framing, graceful stop. Real processes, real sockets.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.local import daemons
from backends.local.envstate import free_port
from backends.local.jsonfile import read_json
from backends.local.proxy import write_config

pytestmark = pytest.mark.integration
STANDIN = Path(__file__).with_name("standin_service.py")
KEY = "k" * 20


class Proxy:
    """A proxy process and the stand-in upstreams it can route to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config, self.status = root / "proxy.json", root / "status.json"
        self.generation = 0
        self.handles: list[dict[str, Any]] = []

    def upstream(self, version: str) -> str:
        """Start a stand-in answering with ``version``; returns its URL once healthy."""
        port = free_port({self.port})
        env = {"SCORING_PORT": str(port), "SCORING_MODEL_VERSION": version, "SCORING_API_KEY": KEY}
        env["SCORING_MODEL_DIR"] = str(self.root)
        self.handles.append(daemons.spawn([sys.executable, str(STANDIN)], env, self.root / "u.log"))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"stand-in {version} did not start")

    def route(self, *urls: str) -> None:
        """Switch to ``urls`` and wait for the proxy's acknowledgement."""
        self.generation += 1
        write_config(self.config, self.generation, list(urls))
        while (read_json(self.status) or {}).get("generation") != self.generation:
            time.sleep(0.01)

    def start(self) -> None:
        write_config(self.config, self.generation, [])
        argv = [sys.executable, "-m", "backends.local.proxy", "--port", str(self.port)]
        argv += ["--config", str(self.config), "--status", str(self.status)]
        self.proxy = daemons.spawn(argv, {}, self.root / "proxy.log")
        self.handles.append(self.proxy)
        while (read_json(self.status) or {}).get("pid") != self.proxy["pid"]:
            assert daemons.alive(self.proxy), (self.root / "proxy.log").read_text()
            time.sleep(0.02)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    proxy = Proxy(tmp_path)
    proxy.start()
    yield proxy
    for handle in proxy.handles:
        daemons.stop(handle)


def _raw(port: int) -> Callable[[bytes], bytes]:
    """One raw keep-alive connection: send bytes, read one response (Content-Length framed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def exchange(data: bytes) -> bytes:
        sock.sendall(data)
        buffer, interim = b"", b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                assert chunk, "connection closed"
                buffer += chunk
            head, _, body = buffer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 1"):
                break
            interim, buffer = interim + head + b"\r\n\r\n", body  # e.g. 100 Continue
        lines = head.lower().split(b"\r\n")
        length = next(
            int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:")
        )
        while len(body) < length:
            body += sock.recv(65536)
        return interim + head + b"\r\n\r\n" + body

    return exchange


def _post(version_of: str = "") -> bytes:
    body = json.dumps({"data": [[1.0]]}).encode()
    return (
        f"POST /score{version_of} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_a_keep_alive_connection_follows_the_switch(proxy: Proxy) -> None:
    v1, v2 = proxy.upstream("1"), proxy.upstream("2")
    proxy.route(v1)
    send = _raw(proxy.port)
    assert b'"version": "1"' in send(_post())
    proxy.route(v2)
    # Same client connection, next request: already the new upstream, nothing was closed.
    assert b'"version": "2"' in send(_post())
    assert b'"version": "2"' in send(_post())


def test_draining_counts_requests_still_on_old_upstreams(proxy: Proxy) -> None:
    v1, v2 = proxy.upstream("1"), proxy.upstream("2")
    proxy.route(v1)
    slow: list[httpx.Response] = []
    headers = {"Authorization": f"Bearer {KEY}"}
    thread = threading.Thread(
        target=lambda: slow.append(
            httpx.post(proxy.url + "/score?sleep=1.5", json={"data": []}, headers=headers)
        )
    )
    thread.start()
    time.sleep(0.5)
    proxy.route(v2)
    assert read_json(proxy.status)["draining"] == {v1: 1}  # type: ignore[index]
    thread.join()
    assert slow[0].status_code == 200 and slow[0].json()["model"]["version"] == "1"
    time.sleep(0.2)
    assert read_json(proxy.status)["draining"] == {}  # type: ignore[index]


def test_failed_connections_are_retried_on_another_upstream(proxy: Proxy) -> None:
    live = proxy.upstream("1")
    dead = f"http://127.0.0.1:{free_port()}"
    proxy.route(dead, live, dead)
    with httpx.Client(base_url=proxy.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        # drop=1: the upstream closes each connection after answering, unannounced.
        codes = [client.post("/score?drop=1", json={"data": []}).status_code for _ in range(60)]
    assert codes == [200] * 60


def test_errors_are_answered_not_dropped(proxy: Proxy) -> None:
    assert httpx.get(proxy.url + "/").status_code == 503  # no upstream yet
    proxy.route(f"http://127.0.0.1:{free_port()}")
    assert httpx.get(proxy.url + "/").status_code == 502  # nothing answers there
    send = _raw(proxy.port)
    assert send(b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert _raw(proxy.port)(both).startswith(b"HTTP/1.1 400 ")


def test_http_framing_variants(proxy: Proxy) -> None:
    proxy.route(proxy.upstream("1"))
    send = _raw(proxy.port)
    chunked = (
        f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        '7\r\n{"data"\r\n9\r\n: [[1.0]]\r\n1\r\n}\r\n0\r\n\r\n'
    ).encode()
    reply = send(chunked)
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    assert b'"result": [0.0]' in reply
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0: answered, then closed
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and b"connection: close" in data.lower()


def test_sigterm_lets_in_flight_requests_finish(proxy: Proxy) -> None:
    proxy.route(proxy.upstream("1"))
    result: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: result.append(
            httpx.post(
                proxy.url + "/score?sleep=1",
                json={"data": []},
                headers={"Authorization": f"Bearer {KEY}"},
            )
        )
    )
    thread.start()
    time.sleep(0.4)
    daemons.stop(proxy.proxy)
    thread.join()
    assert result[0].status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.url + "/")
