"""A local stand-in for Application Insights' ingestion endpoint: collects the telemetry
envelopes an exporter POSTs to ``/v2.1/track`` (its connection string's IngestionEndpoint)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IKEY = "00000000-0000-4000-8000-000000000000"


class Ingestion(ThreadingHTTPServer):
    """Collects the telemetry envelopes POSTed to ``/v2.1/track``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.envelopes: list[dict[str, Any]] = []

    @property
    def connection_string(self) -> str:
        return f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{self.server_port}/"


class _Handler(BaseHTTPRequestHandler):
    server: Ingestion

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path.startswith("/v2.1/track"):
            items = json.loads(body)
            self.server.envelopes += items if isinstance(items, list) else [items]
        answer = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def ingestion_server() -> Iterator[Ingestion]:
    """A running ``Ingestion`` until the block ends."""
    server = Ingestion()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def of_type(envelopes: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The ``baseData`` of the envelopes of one kind (``RequestData``, ``MessageData``...)."""
    return [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == kind]


def request_telemetry(
    envelopes: list[dict[str, Any]], request_id: str, name: str = "POST /score"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request spans named ``name`` and the log records that carry ``request_id``
    (whole envelopes: their ``tags`` hold the trace's ``ai.operation.id``)."""
    spans, logs = [], []
    for envelope in envelopes:
        kind, data = envelope["data"]["baseType"], envelope["data"]["baseData"]
        properties = data.get("properties", {})
        if kind == "RequestData" and data["name"] == name:
            if properties.get("mlops.request_id") == request_id:
                spans.append(envelope)
        elif kind == "MessageData" and properties.get("request_id") == request_id:
            logs.append(envelope)
    return spans, logs


def wait_for_request(
    ingestion: Ingestion, request_id: str, timeout: float = 60.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``request_telemetry`` once both a span and a log record arrived (or ``timeout`` passed):
    the exporter sends in batches, every few seconds."""
    deadline = time.monotonic() + timeout
    while True:
        spans, logs = request_telemetry(list(ingestion.envelopes), request_id)
        if (spans and logs) or time.monotonic() > deadline:
            return spans, logs
        time.sleep(0.5)
