"""A tiny local notification receiver: the stand-in for Teams, Slack or e-mail.

Prefect automations call a webhook when something needs a person (a challenger was rejected,
a file was quarantined, a release failed). Locally that webhook is this server: every POST is
appended as one JSON line to a file, so notifications can be read by people and by tests::

    python -m mlops.notify --port 8650 --file .mlops/notifications.jsonl

- ``POST <any path>``: appends ``{"received_at", "path", "body"}`` (``body`` is the parsed
  JSON when the request carries JSON, else the text) and answers 204.
- ``GET /health``: 200.

It binds 127.0.0.1 only. Lines are appended under a process lock and an exclusive file lock,
so concurrent requests (and several receivers on one file) never interleave.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY_BYTES = 1_000_000


class NotificationLog:
    """An append-only JSON-lines file of received notifications."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line (atomic with respect to other writers)."""
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    os.write(fd, line)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def read_notifications(path: Path | str) -> list[dict[str, Any]]:
    """All notifications received so far, oldest first ([] when there are none)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):  # a line being written
                records.append(json.loads(line))
    return records


def _parse_body(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class _Handler(BaseHTTPRequestHandler):
    server: NotifyServer
    server_version = "mlops-notify/1"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") == "/health":
            self._reply(HTTPStatus.OK, b'{"status":"ok"}')
        else:
            self._reply(HTTPStatus.NOT_FOUND, b'{"detail":"POST notifications; GET /health"}')

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b'{"detail":"bad body length"}')
            return
        body = _parse_body(self.rfile.read(length)) if length else None
        record = {
            "received_at": datetime.now(UTC).isoformat(),
            "path": self.path,
            "body": body,
        }
        self.server.log.append(record)
        logger.info("notification on %s appended to %s", self.path, self.server.log.path)
        self._reply(HTTPStatus.NO_CONTENT, b"")

    do_PUT = do_POST
    do_PATCH = do_POST

    def _reply(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


class NotifyServer(ThreadingHTTPServer):
    """The receiver: a threading HTTP server on 127.0.0.1 writing to a ``NotificationLog``."""

    daemon_threads = True

    def __init__(self, port: int, path: Path) -> None:
        super().__init__((HOST, port), _Handler)
        self.log = NotificationLog(path)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The URL to POST notifications to."""
        return f"http://{HOST}:{self.port}/notify"


@contextlib.contextmanager
def running_receiver(path: Path, port: int = 0) -> Iterator[NotifyServer]:
    """Run a receiver in a background thread (port 0: a free one); stop it on exit."""
    server = NotifyServer(port, path)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="mlops-notify", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(port: int, path: Path) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = NotifyServer(port, path)

    def _stop(signum: int, _frame: object) -> None:
        logger.info("signal %s: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logger.info("notification receiver on %s, writing to %s", server.url, path)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """``python -m mlops.notify --port P --file PATH``."""
    parser = argparse.ArgumentParser(
        prog="python -m mlops.notify", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--file", type=Path, required=True, help="JSON-lines output file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.port, args.file)


if __name__ == "__main__":
    main()
