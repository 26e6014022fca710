"""The local notification receiver: JSON lines, health, concurrency, and its command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mlops.notify import read_notifications, running_receiver
from tests.utils.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_post_json_is_appended_as_one_line(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "dir" / "notifications.jsonl"  # parents are created
    with running_receiver(out) as rx:
        resp = httpx.post(rx.url, json={"event": "mlops.data.quarantined", "reason": "é <x>"})
        assert resp.status_code == 204
        resp = httpx.post(f"http://127.0.0.1:{rx.port}/teams", content=b"plain words")
        assert resp.status_code == 204

    first, second = read_notifications(out)
    assert first["path"] == "/notify"
    assert first["body"] == {"event": "mlops.data.quarantined", "reason": "é <x>"}
    assert first["received_at"].endswith("+00:00")
    assert second == {**second, "path": "/teams", "body": "plain words"}
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2


def test_health_and_unknown_paths(tmp_path: Path) -> None:
    with running_receiver(tmp_path / "n.jsonl") as rx:
        base = f"http://127.0.0.1:{rx.port}"
        assert httpx.get(f"{base}/health").status_code == 200
        assert httpx.get(f"{base}/other").status_code == 404
        assert httpx.post(base, content=b"").status_code == 204  # an empty POST still counts
    assert read_notifications(tmp_path / "n.jsonl")[0]["body"] is None


def test_binds_loopback_only(tmp_path: Path) -> None:
    with running_receiver(tmp_path / "n.jsonl") as rx:
        assert rx.server_address[0] == "127.0.0.1"


def test_concurrent_posts_never_interleave(tmp_path: Path) -> None:
    out = tmp_path / "n.jsonl"
    with (
        running_receiver(out) as rx,
        httpx.Client() as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        statuses = list(
            pool.map(
                lambda i: client.post(rx.url, json={"i": i, "pad": "x" * 5000}).status_code,
                range(40),
            )
        )
    assert statuses == [204] * 40
    records = read_notifications(out)
    assert sorted(r["body"]["i"] for r in records) == list(range(40))
    assert len(out.read_text().splitlines()) == 40


def test_oversized_body_is_refused(tmp_path: Path) -> None:
    with running_receiver(tmp_path / "n.jsonl") as rx:
        resp = httpx.post(rx.url, content=b"x" * 1_000_001)
    assert resp.status_code == 413
    assert read_notifications(tmp_path / "n.jsonl") == []


def test_read_notifications_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_notifications(tmp_path / "nothing.jsonl") == []


def test_module_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "cli" / "n.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops.notify", "--port", str(port), "--file", str(out)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"receiver did not start: {proc.stderr.read() if proc.stderr else b''!r}"
                )
            time.sleep(0.05)
        assert httpx.post(f"http://127.0.0.1:{port}/x", json={"a": 1}).status_code == 204
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
    assert [r["body"] for r in read_notifications(out)] == [{"a": 1}]
    assert json.loads(out.read_text())["path"] == "/x"
