"""The collector: size and time windows, bounded memory, sampling, retries, shutdown flush."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.collect import Collector
from scoring.sas_upload import SasUploader
from scoring.settings import ScoringSettings
from training.collected import COLLECTED_PREFIX, CollectedRow, collected_rows, window_start_of
from training.schema import FEATURES, N_FEATURES


class FakeUploader:
    """Keeps what it is given; fails the first ``failures`` calls; may hold until released."""

    def __init__(self, failures: int = 0, hold: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.failures = failures
        self.released = threading.Event()
        if not hold:
            self.released.set()

    def __call__(self, name: str, body: bytes) -> None:
        self.released.wait(10)
        self.calls.append(name)
        if self.failures:
            self.failures -= 1
            raise OSError("storage unreachable")
        self.blobs[name] = body

    def rows(self) -> list[CollectedRow]:
        return [
            row
            for body in self.blobs.values()
            for row in collected_rows(body.decode().splitlines())
        ]


def make(uploader: FakeUploader, **options: Any) -> Collector:
    collector = Collector(
        uploader,
        env="qa",
        model="diabetes-ridge",
        version="7",
        fingerprint="fp-123",
        writer="w1",
        **options,
    )
    collector.start()
    return collector


def request(i: int, n: int = 1) -> tuple[str, np.ndarray, list[float]]:
    rows = np.full((n, N_FEATURES), float(i))
    return f"req-{i}", rows, [float(i) * 10 + k for k in range(n)]


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_window_is_written_when_flush_rows_wait() -> None:
    uploader = FakeUploader()
    collector = make(uploader, flush_rows=6, window_seconds=3600)
    for i in range(3):
        collector.record(*request(i, n=2))
    wait_for(lambda: len(uploader.blobs) == 1)
    [name] = uploader.blobs
    assert name.startswith(f"{COLLECTED_PREFIX}/qa/") and name.endswith("-w1.jsonl")
    rows = uploader.rows()
    assert [(r.request_id, r.row) for r in rows] == [
        ("req-0", 0), ("req-0", 1), ("req-1", 0), ("req-1", 1), ("req-2", 0), ("req-2", 1),
    ]  # fmt: skip
    first = rows[2]
    assert (first.model, first.version, first.data_fingerprint) == ("diabetes-ridge", "7", "fp-123")
    assert first.features == dict.fromkeys(FEATURES, 1.0) and first.prediction == 10.0
    assert abs(window_start_of(name).timestamp() - time.time()) < 5
    collector.close(5)
    assert collector.stats()["rows_uploaded"] == 6


def test_a_window_is_written_when_its_time_is_up() -> None:
    uploader = FakeUploader()
    collector = make(uploader, flush_rows=1000, window_seconds=0.3)
    started = time.monotonic()
    collector.record(*request(1))
    wait_for(lambda: len(uploader.blobs) == 1)
    assert time.monotonic() - started >= 0.25
    collector.record(*request(2))  # the next window, a new file
    wait_for(lambda: len(uploader.blobs) == 2)
    names = sorted(uploader.blobs)
    assert window_start_of(names[0]) < window_start_of(names[1])  # never the same name
    collector.close(5)


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    uploader = FakeUploader(hold=True)  # storage hangs: nothing leaves memory
    collector = make(uploader, flush_rows=2, max_rows=4, window_seconds=3600)
    started = time.monotonic()
    for i in range(5):
        collector.record(*request(i, n=2))
    assert time.monotonic() - started < 0.5  # the request path never waited for storage
    stats = collector.stats()
    assert stats["rows_collected"] == 4 and stats["rows_dropped_full"] == 6
    assert stats["queue_rows"] == 4
    uploader.released.set()
    collector.close(5)
    assert sorted(r.request_id for r in uploader.rows()) == ["req-0", "req-0", "req-1", "req-1"]
    assert collector.stats()["queue_rows"] == 0


def test_sampling_keeps_whole_requests_at_the_rate() -> None:
    uploader = FakeUploader()
    draws = iter([0.1, 0.6, 0.2, 0.9])
    collector = make(uploader, sample=0.5, rng=lambda: next(draws), window_seconds=3600)
    for i in range(4):
        collector.record(*request(i, n=3))
    collector.close(5)
    assert sorted({r.request_id for r in uploader.rows()}) == ["req-0", "req-2"]
    assert len(uploader.rows()) == 6
    assert collector.stats()["requests_sampled_out"] == 2


def test_close_writes_everything_held_exactly_once() -> None:
    uploader = FakeUploader()
    collector = make(uploader, flush_rows=50, window_seconds=3600)
    for i in range(120):
        collector.record(*request(i))
    collector.close(10)
    rows = uploader.rows()
    assert sorted(r.request_id for r in rows) == sorted(f"req-{i}" for i in range(120))
    assert len(uploader.calls) == len(uploader.blobs)  # no blob written twice
    stats = collector.stats()
    assert stats["rows_uploaded"] == 120 and stats["queue_rows"] == 0
    collector.record(*request(999))  # after close: refused, counted
    assert collector.stats()["rows_dropped_full"] == 1


def test_a_failed_upload_is_retried_under_the_same_name() -> None:
    uploader = FakeUploader(failures=2)
    collector = make(uploader, flush_rows=1, retry_seconds=0.05, upload_attempts=3)
    collector.record(*request(1))
    wait_for(lambda: len(uploader.blobs) == 1)
    assert len(set(uploader.calls)) == 1 and len(uploader.calls) == 3
    collector.close(5)
    assert collector.stats()["upload_failures"] == 2
    assert collector.stats()["rows_dropped_upload"] == 0


def test_a_window_that_never_uploads_is_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uploader = FakeUploader(failures=100)
    collector = make(uploader, flush_rows=2, retry_seconds=0.01, upload_attempts=3)
    collector.record(*request(1, n=2))
    wait_for(lambda: collector.stats()["rows_dropped_upload"] == 2)
    assert len(uploader.calls) == 3
    assert collector.stats()["queue_rows"] == 0  # memory is given back
    assert "after 3 failed uploads" in caplog.text
    collector.record(*request(2, n=2))  # the collector still works
    uploader.failures = 0
    collector.close(5)
    assert [r.request_id for r in uploader.rows()] == ["req-2", "req-2"]


# ---------------------------------------------------------------------- the HTTP upload
class _Sink(BaseHTTPRequestHandler):
    puts: list[tuple[str, dict[str, str], bytes]]
    status = 201

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.puts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[tuple[str, type[_Sink]]]:
    handler = type("Sink", (_Sink,), {"puts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/acct/collected", handler
    server.shutdown()
    server.server_close()


def test_sas_uploader_puts_a_block_blob_and_keeps_the_sas_out_of_errors(
    tmp_path: Path, sink: tuple[str, type[_Sink]]
) -> None:
    url, handler = sink
    url_file = tmp_path / "collect_url"
    url_file.write_text(f"{url}?sv=2021&sig=SECRET\n")
    upload = SasUploader(url_file.read_text)
    upload("scoring/qa/2026/12/02/13/x-w1.jsonl", b'{"a":1}\n')
    path, headers, body = handler.puts[0]
    assert path == "/acct/collected/scoring/qa/2026/12/02/13/x-w1.jsonl?sv=2021&sig=SECRET"
    assert headers["x-ms-blob-type"] == "BlockBlob" and headers["x-ms-version"]
    assert body == b'{"a":1}\n'
    handler.status = 403
    with pytest.raises(OSError, match="403") as failure:
        upload("b.jsonl", b"x")
    assert "SECRET" not in str(failure.value)


def test_the_service_collects_scored_rows_and_reports_counters(
    tmp_path: Path,
    sink: tuple[str, type[_Sink]],
    make_settings: Callable[..., ScoringSettings],
    api_key: str,
) -> None:
    from starlette.testclient import TestClient

    from scoring.app import create_app

    url, handler = sink
    url_file = tmp_path / "collect_url"
    url_file.write_text(f"{url}?sig=s")
    settings = make_settings(collect_url_file=url_file, collect_env="production")
    headers = {"Authorization": f"Bearer {api_key}", "x-request-id": "abc-1"}
    with TestClient(create_app(settings)) as client:
        scored = client.post("/score", json={"data": [[0.01] * N_FEATURES] * 2}, headers=headers)
        assert scored.status_code == 200
        collection = client.get("/model", headers=headers).json()["collection"]
        assert collection["rows_collected"] == 2 and collection["env"] == "production"
        # /metrics reads the same collector: two rows held, none dropped
        metrics = client.get("/metrics").text
        assert "scoring_collect_queue_depth 2.0" in metrics
        assert "scoring_collect_dropped_total 0.0" in metrics
    # the lifespan shutdown wrote the open window
    [(path, _, body)] = handler.puts
    assert path.startswith("/acct/collected/scoring/production/")
    rows = collected_rows(body.decode().splitlines())
    assert [(r.request_id, r.row) for r in rows] == [("abc-1", 0), ("abc-1", 1)]
    assert rows[0].prediction == scored.json()["predictions"][0]
    assert rows[0].data_fingerprint == "0" * 64  # from the model's run.json


def test_the_writer_rests_to_stay_within_its_cpu_share_and_the_excess_is_dropped() -> None:
    uploader = FakeUploader()
    collector = make(uploader, flush_rows=1, max_rows=50, cpu_share=1e-4, window_seconds=3600)
    collector.record(*request(0, n=100))  # too many for max_rows: dropped at once
    collector.record(*request(1))
    time.sleep(0.1)  # the window is cut, serialised, then the writer rests ~1e4 x its work
    for i in range(2, 80):
        collector.record(*request(i))
    time.sleep(0.3)
    assert len(uploader.blobs) <= 1  # resting: nothing more cut
    stats = collector.stats()
    assert stats["rows_collected"] == 50 and stats["rows_dropped_full"] == 100 + 29
    started = time.monotonic()
    collector.close(5)  # a shutdown cuts the rest short and writes everything
    assert time.monotonic() - started < 2
    assert len(uploader.rows()) == 50


def test_each_request_is_one_line_whose_features_are_the_bodys_own_numbers() -> None:
    uploader = FakeUploader()
    collector = make(uploader, window_seconds=3600)
    values = [1, 2.5e-1, -3, 0.1, 4e2, 5, 6, 7, 8, 9][:N_FEATURES]
    text = ", ".join(str(v) for v in values)
    body = f'{{ "data" : [ [{text}], [{text}] ] }}'.encode()  # ints, exponents, spaces
    rows = np.array([values, values], dtype=np.float64)
    collector.record("req-b", rows, np.array([1.5, 2.5]), body)
    collector.close(5)
    [blob] = uploader.blobs.values()
    [line] = blob.decode().splitlines()
    assert f"[ [{text}], [{text}] ]" in line  # copied, not re-formatted
    got = uploader.rows()
    assert [(r.request_id, r.row, r.prediction) for r in got] == [
        ("req-b", 0, 1.5), ("req-b", 1, 2.5),
    ]  # fmt: skip
    assert [list(r.features.values()) for r in got] == [[float(v) for v in values]] * 2


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [\n[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]}',  # a line break
        b'{"data": [[1]], "data": [[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]}',
        b'{"data": [[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5' + b" " * 2000 + b"]]}",
    ],
    ids=["line-break", "duplicate-key", "padding"],
)
def test_a_body_that_cannot_be_copied_is_written_from_the_rows(body: bytes) -> None:
    uploader = FakeUploader()
    collector = make(uploader, window_seconds=3600)
    collector.record("req-x", np.full((1, N_FEATURES), 0.5), np.array([3.0]), body)
    collector.close(5)
    [blob] = uploader.blobs.values()
    assert blob.count(b"\n") == 1 and b"  " not in blob and b"[[1]]" not in blob
    [row] = uploader.rows()
    assert row.features == dict.fromkeys(FEATURES, 0.5) and row.prediction == 3.0
