"""Collection off the request path: scored rows to the lake's ``collected`` container.

A request handler calls ``Collector.record``: an append to an in-memory list under a lock,
never I/O, and no object the garbage collector must keep scanning (the request's id, time,
float64 arrays or body bytes, in a tuple it stops tracking at its first pass). A
background thread turns what has gathered into one window file (``training.collected``:
one ``CollectedRequest`` per JSON line, blob
``scoring/<env>/<yyyy>/<mm>/<dd>/<HH>/<window-start>-<writer>.jsonl``) when ``flush_rows``
rows wait or the window has been open ``window_seconds``, and uploads it.

The features of a line are the request body's own ``data`` text when the service passes the
body (validated JSON, so the same numbers the model saw), copied as bytes: nothing to
format, and the writer thread (not the request) checks it. A body with more than
``_MAX_BYTES_PER_VALUE`` bytes per value (padding) is not kept, and one with a line break
or a repeated key is not copied: those rows are written from the float64 array by orjson.

Bounds and losses, counted in ``Collector.stats()`` (also served in ``GET /model``):

- memory: at most ``max_rows`` rows are held (waiting, or uploaded and failed). A request
  whose rows do not fit is not collected (``dropped_full``); the request itself is served
  as usual and never waits;
- CPU: the writer thread serialises and sends at most ``cpu_share`` of a core on average
  (it shares the GIL with the requests); when rows come faster than that, the queue fills and the
  excess is dropped (``dropped_full``), so collection costs the service a bounded share of
  its throughput however many rows a request carries;
- a failed upload is retried ``upload_attempts`` times, ``retry_seconds`` apart, then the
  window is dropped with a log line (``dropped_upload``);
- sampling is per request (every row of a sampled request, so labels join whole requests):
  ``sample`` 1 collects every request, 0 none (the collector is then not built at all);
- ``close`` (the lifespan shutdown, after the server answered its last request) uploads
  everything held: a clean shutdown loses nothing. A crash loses what is held: the open
  window (at most ``window_seconds`` or ``flush_rows`` rows) and any window awaiting a retry.

A window's blob name is fixed when it is cut, so a retry after a lost answer overwrites the
same blob with the same bytes: each row lands exactly once. Window starts are strictly
increasing per writer (the time of the window's first row, in whole seconds, moved one
second past the previous window's when two would share a second).
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import numpy as np
import orjson

from scoring.sas_upload import SasUploader
from scoring.settings import ScoringSettings
from training.collected import window_blob
from training.schema import FEATURES

logger = logging.getLogger("scoring.collect")


class Uploader(Protocol):
    """Stores ``body`` as the blob ``name`` of the collected container; raises on failure."""

    def __call__(self, name: str, body: bytes) -> None: ...


@dataclass
class _Window:
    """One cut window: its blob name, bytes and how many tries it has had."""

    name: str
    body: bytes
    rows: int
    attempts: int = 0
    next_try: float = 0.0


# Longest burst of serialising before the writer rests (cpu_share) and gives the GIL back:
# the event loop waits at most about this long for it.
_PACE_SECONDS = 0.001
# A body kept as the features' text holds at most this many bytes per value (else the
# float64 rows are kept): memory stays bounded by max_rows.
_MAX_BYTES_PER_VALUE = 40

# One recorded request: its id, when it was scored (epoch seconds), its rows (float64),
# its predictions and its body (None: not kept).
_Request = tuple[str, float, np.ndarray, "np.ndarray | list[float]", "bytes | None"]


@dataclass
class _Held:
    """Requests recorded since the last cut, and counters (guarded by the condition's lock)."""

    requests: list[_Request] = field(default_factory=list)
    rows: int = 0  # rows waiting to be cut
    opened: float = 0.0  # monotonic time of the oldest waiting request
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "requests_collected",
                "requests_sampled_out",
                "rows_collected",
                "rows_uploaded",
                "windows_uploaded",
                "upload_failures",
                "rows_dropped_full",
                "rows_dropped_upload",
            ),
            0,
        )
    )


class Collector:
    """Gathers scored rows in memory and writes them as window files from a thread.

    Args:
        uploader: Stores one window file (``SasUploader`` in the service).
        env: The environment in blob names (``qa``, ``production``).
        model: Registered model name.
        version: Registered model version.
        fingerprint: The model's training-data fingerprint (``run.json``).
        sample: Share of requests collected (0 to 1).
        window_seconds: Longest a window stays open.
        flush_rows: A window is cut as soon as this many rows wait.
        max_rows: Most rows held in memory (waiting or awaiting a retry).
        upload_attempts: Tries of one window before it is dropped.
        retry_seconds: Wait between two tries of a window.
        cpu_share: Most of one core the writer thread uses for serialising and sending, on average
            (it shares the GIL with the requests): after a window it rests in proportion.
        writer: This process's name in blob names (default: host, pid and a random tag).
    """

    def __init__(
        self,
        uploader: Uploader,
        *,
        env: str,
        model: str,
        version: str,
        fingerprint: str,
        sample: float = 1.0,
        window_seconds: float = 60.0,
        flush_rows: int = 10_000,
        max_rows: int = 50_000,
        upload_attempts: int = 5,
        retry_seconds: float = 5.0,
        cpu_share: float = 0.03,
        writer: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.uploader = uploader
        self.env = env
        self.sample = sample
        self.window_seconds = window_seconds
        self.flush_rows = flush_rows
        self.max_rows = max_rows
        self.upload_attempts = upload_attempts
        self.retry_seconds = retry_seconds
        self.cpu_share = cpu_share
        self.writer = writer or _writer_name()
        self._clock = clock
        # One window line (CollectedRequest), its per-request fields set by the writer.
        self._line: dict[str, Any] = {
            "request_id": "",
            "time": None,
            "model": model,
            "version": version,
            "data_fingerprint": fingerprint,
            "columns": list(FEATURES),
            "predictions": None,
        }
        self._rng = rng
        self._lock = threading.Lock()  # record() enters it directly: no Python frame
        self._cond = threading.Condition(self._lock)
        self._held = _Held()
        self._failed: list[_Window] = []  # cut windows awaiting a retry (thread only)
        self._unsent = 0  # rows cut and not yet uploaded or dropped
        self._last_start = 0  # whole seconds of the last window start
        self._closing = False
        self._stopping = threading.Event()  # set by close(): no more resting
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ request path
    def record(
        self,
        request_id: str,
        rows: np.ndarray,
        predictions: np.ndarray | list[float],
        body: bytes | None = None,
    ) -> None:
        """Keep one scored request for the next window; never blocks on I/O.

        Args:
            request_id: The request's id.
            rows: Its rows, float64 ``(n, N_FEATURES)``.
            predictions: One per row (a float64 array keeps the garbage collector out).
            body: The request body ``rows`` were parsed from (``{"data": [...]}``), whose
                ``data`` text becomes the features when it has no line break and no padding.
        """
        counts = self._held.counts
        if self.sample < 1.0 and self._rng() >= self.sample:
            with self._lock:
                counts["requests_sampled_out"] += 1
            return
        n = len(predictions)
        if body is not None and len(body) > _MAX_BYTES_PER_VALUE * rows.size + 64:
            body = None  # padded: memory is bounded by rows, so keep the array only
        # No scan of the body here: the writer checks it (_features_text) on its CPU share.
        entry = (request_id, self._clock(), rows, predictions, body)
        with self._lock:
            held = self._held
            if self._closing or held.rows + self._unsent + n > self.max_rows:
                counts["rows_dropped_full"] += n
                return
            if not held.requests:
                held.opened = time.monotonic()
            held.requests.append(entry)
            held.rows += n
            counts["requests_collected"] += 1
            counts["rows_collected"] += n
            if len(held.requests) == 1 or held.rows >= self.flush_rows > held.rows - n:
                self._cond.notify()  # the first request, or the one that fills the window

    def stats(self) -> dict[str, Any]:
        """Counters since start, plus what is held now (``queue_rows``) and the settings."""
        with self._cond:
            return {
                **self._held.counts,
                "queue_rows": self._held.rows + self._unsent,
                "max_rows": self.max_rows,
                "sample": self.sample,
                "env": self.env,
                "writer": self.writer,
            }

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the writer thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="collector", daemon=True)
            self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Refuse new rows, write every held one (retries included), stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("collector: shutdown timed out with %d rows unsent", self._unsent)

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(self._wait_seconds())
                closing = self._closing
                cut = self._cut_if_due(closing)
            if cut is not None:  # serialised outside the lock: record() never waits for it
                self._failed.append(self._window(*cut))
            self._upload_due(closing)
            if closing and not self._failed:
                with self._cond:
                    if not self._held.requests:
                        return

    def _wait_seconds(self) -> float | None:
        if self._closing:
            return 0
        waits = [w.next_try - time.monotonic() for w in self._failed]
        held = self._held
        if held.requests:
            due = held.opened + self.window_seconds
            if held.rows >= self.flush_rows:
                due = 0.0
            waits.append(due - time.monotonic())
        return max(0.0, min(waits)) if waits else None

    def _cut_if_due(self, closing: bool) -> tuple[str, list[_Request], int] | None:
        held = self._held
        if not held.requests:
            return None
        age = time.monotonic() - held.opened
        if not closing and held.rows < self.flush_rows and age < self.window_seconds:
            return None
        requests, rows = held.requests, held.rows
        held.requests, held.rows = [], 0
        self._unsent += rows
        start = max(int(requests[0][1]), self._last_start + 1)
        self._last_start = start
        name = window_blob(self.env, datetime.fromtimestamp(start, UTC), self.writer)
        return name, requests, rows

    def _window(self, name: str, requests: list[_Request], rows: int) -> _Window:
        # This thread shares the GIL with the requests: one orjson call per request (C),
        # and the features copied from the body's bytes when kept, in bursts of at most
        # _PACE_SECONDS of CPU.
        out = bytearray()  # one growing buffer: no object per line
        line = self._line
        started = time.thread_time()
        for count, (request_id, when, features, predictions, body) in enumerate(requests, 1):
            line["request_id"] = request_id
            line["time"] = datetime.fromtimestamp(when, UTC)
            if isinstance(predictions, np.ndarray):
                predictions = np.ascontiguousarray(predictions)
            line["predictions"] = predictions
            text = _features_text(body)
            if text is not None:
                out += orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY)
                out[-1:] = b',"features":'
                out += text
                out += b"}\n"
            else:
                line["features"] = np.ascontiguousarray(features)
                out += orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY)
                out += b"\n"
                del line["features"]
            if count % 16 == 0 and time.thread_time() - started >= _PACE_SECONDS:
                self._rest(started)
                started = time.thread_time()
        self._rest(started)
        return _Window(name, bytes(out), rows)

    def _rest(self, started: float) -> None:
        """Sleep so that the CPU spent since ``started`` is ``cpu_share`` of the time: the
        thread shares the GIL with the requests, so it works in short bursts (``_PACE_SECONDS``)
        with rests between, never for seconds on end. Meanwhile rows gather (past
        ``max_rows`` they are dropped). A shutdown does not rest."""
        busy = time.thread_time() - started
        if busy > 0 and not self._stopping.is_set():
            self._stopping.wait(busy * (1 / self.cpu_share - 1))

    def _upload_due(self, closing: bool) -> None:
        now = time.monotonic()
        for window in list(self._failed):
            if window.next_try > now and not closing:
                continue
            if closing and window.attempts and window.next_try > now:
                time.sleep(min(window.next_try - now, 1.0))
            window.attempts += 1
            started = time.thread_time()
            try:
                self.uploader(window.name, window.body)
            except Exception as exc:
                self._after_failure(window, exc)
                continue
            finally:  # sending costs this process CPU too (copies, syscalls): rest for it
                self._rest(started)
            self._failed.remove(window)
            with self._cond:
                self._unsent -= window.rows
                self._held.counts["rows_uploaded"] += window.rows
                self._held.counts["windows_uploaded"] += 1

    def _after_failure(self, window: _Window, exc: Exception) -> None:
        with self._cond:
            self._held.counts["upload_failures"] += 1
        if window.attempts < self.upload_attempts:
            window.next_try = time.monotonic() + self.retry_seconds
            logger.warning(
                "collector: upload of %s failed (try %d of %d): %s",
                window.name, window.attempts, self.upload_attempts, exc,
            )  # fmt: skip
            return
        self._failed.remove(window)
        with self._cond:
            self._unsent -= window.rows
            self._held.counts["rows_dropped_upload"] += window.rows
        logger.error(
            "collector: dropped %s (%d rows) after %d failed uploads: %s",
            window.name, window.rows, window.attempts, exc,
        )  # fmt: skip


def _features_text(body: bytes | None) -> memoryview | None:
    """The ``data`` value of a validated ``{"data": [...]}`` body, as it is, if it can be a
    line's features: no line break, and one ``:`` (one key, so no duplicate ``data``)."""
    if body is None or b"\n" in body or b"\r" in body:
        return None
    colon = body.find(b":")
    if colon != body.rfind(b":"):
        return None
    return memoryview(body)[colon + 1 : body.rindex(b"}")]


def collector_for(
    settings: ScoringSettings, name: str, version: str, fingerprint: str
) -> Collector | None:
    """The service's collector, or None when collection is off (no SAS URL, or sample 0)."""
    url: Callable[[], str]
    if settings.collect_url_file is not None:
        url = partial(settings.collect_url_file.read_text, encoding="utf-8")
    elif settings.collect_url is not None:
        url = settings.collect_url.get_secret_value
    else:
        return None
    if settings.collect_sample == 0:
        return None
    return Collector(
        SasUploader(url),
        env=settings.collect_env,
        model=name,
        version=version,
        fingerprint=fingerprint,
        sample=settings.collect_sample,
        window_seconds=settings.collect_window_seconds,
        flush_rows=settings.collect_flush_rows,
        max_rows=settings.collect_max_rows,
        upload_attempts=settings.collect_upload_attempts,
        retry_seconds=settings.collect_retry_seconds,
        cpu_share=settings.collect_cpu_share,
    )


def _writer_name() -> str:
    # Unique per process: replicas in containers share the host name (host network) and
    # often the pid (1), so a random tag tells them apart.
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"
