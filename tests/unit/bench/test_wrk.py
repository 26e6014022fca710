"""wrk's result line: parsed exactly, refused when missing, and produced by the real wrk."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import wrk

LINE = (
    "BENCH requests=30000 duration_us=10000000 p50_us=1500 p90_us=2500 p99_us=9800 "
    "max_us=30123 connect=1 read=2 write=0 status=4 timeout=3"
)


def test_parse_reads_the_bench_line_among_wrk_output() -> None:
    output = (
        f"Running 10s test @ http://127.0.0.1:1/score\n  1 threads and 16 connections\n{LINE}\n"
    )
    result = wrk.parse(output)
    assert result.requests == 30000 and result.seconds == 10.0
    assert result.rps == 3000.0
    assert (result.p50_ms, result.p90_ms, result.p99_ms, result.max_ms) == (1.5, 2.5, 9.8, 30.123)
    assert result.status_errors == 4 and result.socket_errors == 6 and result.errors == 10


def test_parse_refuses_output_without_the_line() -> None:
    with pytest.raises(wrk.WrkError, match="no BENCH line"):
        wrk.parse("Running 10s test\nunable to connect to 127.0.0.1:1 Connection refused\n")


def test_parse_refuses_a_line_with_a_field_missing() -> None:
    with pytest.raises(wrk.WrkError, match="lacks p99_us"):
        wrk.parse(LINE.replace(" p99_us=9800", ""))


def test_command_is_one_thread_with_the_body_and_key_files() -> None:
    argv = wrk.command("http://h:1/score", Path("/b.json"), Path("/k"), seconds=2.6)
    assert argv[:5] == ["wrk", "-t1", "-c16", "-d3s", "--timeout=5s"]  # whole seconds only
    assert argv[-4:] == ["http://h:1/score", "--", "/b.json", "/k"]
    short = wrk.command("u", Path("/b"), None, seconds=0.2)
    assert short[3] == "-d1s" and short[-1] == "/b"


class _Scorer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Scorer.seen.append((self.headers.get("Authorization", ""), body))
        ok = self.headers.get("Authorization") == "Bearer k3y"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Scorer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/score"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed: make setup")
def test_real_wrk_posts_the_body_with_the_key_and_counts_refusals(
    server: str, tmp_path: Path
) -> None:
    body, key = tmp_path / "body.json", tmp_path / "key"
    body.write_bytes(b'{"data": [[1]]}')
    key.write_text("k3y\n")
    _Scorer.seen.clear()
    good = wrk.run(server, body, key, 1, connections=2)
    assert good.requests > 0 and good.errors == 0
    assert _Scorer.seen[0] == ("Bearer k3y", b'{"data": [[1]]}')
    key.write_text("wrong\n")
    refused = wrk.run(server, body, key, 1, connections=2)
    assert refused.requests > 0 and refused.status_errors == refused.requests
