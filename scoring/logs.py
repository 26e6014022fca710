"""One JSON object per log line: the request log and everything else the service says."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, TextIO

import orjson

from scoring.asgi import Request

access_logger = logging.getLogger("scoring.access")

# Attributes a LogRecord always has; anything else came through ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message and ``extra`` fields."""

    _second = -1
    _second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a single-line JSON object."""
        second = int(record.created)
        if second != self._second:  # strftime once per second, not once per request
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        line: dict[str, Any] = {
            "ts": f"{self._second_text}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class BatchingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes its lines in batches: every ``interval`` seconds, when
    ``max_lines`` are waiting, and at once for a warning or worse.

    In a container, stdout is a pipe read by containerd-shim and dockerd, and each write is
    a wake-up of both: one write per request log line cost the replica a large share of its
    throughput (``bench/container_loss.py``). A batch is one write. A line waits at most
    ``interval`` seconds; ``logging.shutdown`` (at exit) writes what is left.
    """

    def __init__(self, stream: TextIO, interval: float = 0.2, max_lines: int = 512) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_lines = max_lines
        self._pending: list[str] = []
        self._stopped = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._pending.append(line)
            due = record.levelno >= logging.WARNING or len(self._pending) >= self.max_lines
        if due:
            self.flush()
        elif self._flusher is None:
            self._start_flusher()

    def flush(self) -> None:
        """Write every waiting line in one write."""
        with self.lock:  # type: ignore[union-attr]
            if not self._pending:
                return
            text, self._pending = "".join(self._pending), []
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:  # a closed or broken stdout must not fail a request
                pass

    def close(self) -> None:
        self._stopped.set()
        self.flush()
        super().close()

    def _start_flusher(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(target=self._flush_every, daemon=True)
            self._flusher.start()

    def _flush_every(self) -> None:
        while not self._stopped.wait(self.interval):
            self.flush()


def configure_logging(level: str, flush_interval: float = 0.2) -> None:
    """Send every log record (the service's and uvicorn's) to stdout as JSON lines.

    Args:
        level: Level name such as ``"INFO"``.
        flush_interval: Longest wait of a line for others to share its write; 0 writes
            each line at once.
    """
    handler: logging.Handler
    if flush_interval > 0:
        handler = BatchingHandler(sys.stdout, interval=flush_interval)
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in root.handlers:
        old.close()  # a BatchingHandler writes what it holds and stops its thread
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers.clear()
        uv_logger.propagate = True


def log_request(request: Request, status: int, started: float, model_version: str) -> None:
    """Write the one request-log line: id, method, path, status, latency, rows, model.

    Payloads appear only when the handler attached them (``log_payloads``); headers, and
    so the API key, never do.

    Args:
        request: The served request.
        status: The response status (499 when the client went away).
        started: ``time.perf_counter()`` when the request arrived.
        model_version: Version of the served model.
    """
    if not access_logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "request_id": request.request_id,
        "method": request.method,
        "path": request.path,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "rows": request.rows,
        "model_version": model_version,
    }
    if request.error:
        fields["error"] = request.error
    traceparent = request.headers.get(b"traceparent")
    if traceparent:
        fields["traceparent"] = traceparent[:100]
    if request.payload is not None:
        fields.update(request.payload)
    access_logger.info("request", extra=fields)
