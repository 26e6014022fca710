"""The request log's batching handler: lines arrive whole, in order, in few writes, soon."""

from __future__ import annotations

import io
import json
import logging
import time

from scoring.logs import BatchingHandler, JsonFormatter


class CountingStream(io.StringIO):
    """A stream that counts its writes (each one is a wake-up of the log collector)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test-batching-{id(handler)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_many_lines_leave_in_one_write_in_order() -> None:
    stream = CountingStream()
    handler = BatchingHandler(stream, interval=60, max_lines=100)
    handler.setFormatter(JsonFormatter())
    logger = _logger(handler)
    for i in range(99):
        logger.info("request", extra={"n": i})
    assert stream.writes == 0  # held: neither full nor due
    logger.info("request", extra={"n": 99})  # the 100th fills the batch
    assert stream.writes == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["n"] for line in lines] == list(range(100))
    handler.close()


def test_a_line_waits_at_most_the_interval() -> None:
    stream = CountingStream()
    handler = BatchingHandler(stream, interval=0.05)
    logger = _logger(handler)
    logger.info("alone")
    deadline = time.monotonic() + 5
    while "alone" not in stream.getvalue():
        assert time.monotonic() < deadline, "the line was never written"
        time.sleep(0.01)
    handler.close()


def test_a_warning_is_written_at_once_with_what_waited() -> None:
    stream = CountingStream()
    handler = BatchingHandler(stream, interval=60)
    logger = _logger(handler)
    logger.info("first")
    logger.warning("second")
    assert stream.getvalue() == "first\nsecond\n" and stream.writes == 1
    handler.close()


def test_close_writes_what_is_left() -> None:
    stream = CountingStream()
    handler = BatchingHandler(stream, interval=60)
    _logger(handler).info("last words")
    handler.close()
    assert stream.getvalue() == "last words\n"
