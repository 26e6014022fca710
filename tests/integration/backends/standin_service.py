"""A stand-in for the scoring service, stdlib only (it also runs in a bare python image).

Configured like the real one (``SCORING_*`` variables). ``GET /`` answers 200 once "loaded";
``POST /score`` needs ``Authorization: Bearer <SCORING_API_KEY>`` and answers like the real
service (``{"result": [...], "model": {"name": ..., "version": ...}}``), so tests can see
which release served each request. A file named ``CRASH`` in the
model folder makes it exit at start; ``UNHEALTHY`` makes ``GET /`` answer 503 for ever.
Query parameters for proxy tests: ``sleep=S`` answers after S seconds (at most 5);
``drop=1`` closes the connection after answering, without saying so in a header.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MODEL_DIR = Path(os.environ.get("SCORING_MODEL_DIR", "/model"))
NAME = os.environ.get("SCORING_MODEL_NAME", "?")
VERSION = os.environ.get("SCORING_MODEL_VERSION", "?")
KEY = (
    Path(os.environ["SCORING_API_KEY_FILE"]).read_text().strip()
    if os.environ.get("SCORING_API_KEY_FILE")
    else os.environ.get("SCORING_API_KEY", "")
)
LOAD_SECONDS = 0.3  # like loading a model: bound but not yet healthy
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like uvicorn
    disable_nagle_algorithm = True
    # Buffered: headers and body leave in one write when the handler returns. A replica
    # killed mid-response leaves a client a truncated answer no proxy can retry; with one
    # write per response, a kill lands before or after it, never inside it.
    wbufsize = 64 * 1024

    def _send(self, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _quirks(self) -> str:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        time.sleep(min(5.0, float(query.get("sleep", ["0"])[0])))
        # Closing without a "Connection: close" header: a keep-alive peer finds out late.
        self.close_connection = query.get("drop") == ["1"]
        return url.path

    def do_GET(self) -> None:
        loaded = time.monotonic() - STARTED > LOAD_SECONDS
        if self._quirks() != "/":
            self._send(404, {"error": "not found"})
        elif (MODEL_DIR / "UNHEALTHY").exists() or not loaded:
            self._send(503, {"status": "loading"})
        else:
            self._send(200, {"status": "ok"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._quirks()
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._send(401, {"error": "bad key"})
            return
        rows = json.loads(body or b"{}").get("data", [])
        model = {"name": NAME, "version": VERSION}
        self._send(200, {"result": [0.0] * len(rows), "model": model})

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests send thousands of requests


def main() -> None:
    if (MODEL_DIR / "CRASH").exists():
        sys.exit("stand-in: model folder says CRASH")
    host = os.environ.get("SCORING_HOST", "127.0.0.1")
    ThreadingHTTPServer.request_queue_size = 128  # like uvicorn's backlog, not stdlib's 5
    server = ThreadingHTTPServer((host, int(os.environ["SCORING_PORT"])), Handler)
    server.daemon_threads = True
    # HAProxy ends its health checks with a reset: no traceback per check in the log.
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    # SIGTERM: stop accepting, then exit (the proxy has drained us before it comes).
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
