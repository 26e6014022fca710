"""One JSON object per log line: the request log and everything else the service says."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

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


def configure_logging(level: str) -> None:
    """Send every log record (the service's and uvicorn's) to stdout as JSON lines.

    Args:
        level: Level name such as ``"INFO"``.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
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
