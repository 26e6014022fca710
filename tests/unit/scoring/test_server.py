"""``python -m scoring`` as a real process: serves over HTTP, refuses wrong models and settings."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.net import free_port
from tests.utils.scoring_process import scoring_env

REPO = Path(__file__).resolve().parents[3]


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scoring"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serves_over_real_http(model_dir: Path, model_sha: str, api_key: str) -> None:
    port = free_port()
    proc = _start(scoring_env(model_dir, model_sha, api_key, port))
    base = f"http://127.0.0.1:{port}"
    golden = json.loads((model_dir / "golden.json").read_text())
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(base + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready in 30 s"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=5) as client:
            auth = {"Authorization": f"Bearer {api_key}", "X-Request-Id": "real-1"}
            scored = client.post("/score", json={"data": golden["data"]}, headers=auth)
            assert scored.status_code == 200
            assert scored.headers["x-request-id"] == "real-1"
            served = scored.json()["predictions"]
            assert served == pytest.approx(golden["predictions"], rel=1e-9, abs=1e-9)
            assert client.post("/score", json={"data": golden["data"]}).status_code == 401
            assert client.get("/model", headers=auth).json()["sha256"] == model_sha
            assert client.get("/swagger.json").json()["openapi"].startswith("3.")
            too_big = client.post(
                "/score",
                content=b"[" + b"1," * 600_000 + b"1]",
                headers={**auth, "Content-Type": "application/json"},
            )
            assert too_big.status_code == 413
            streamed = client.post(
                "/score",
                content=iter([b'{"data": [', b"[1,2,3,4,5,6,7,8,9,10]", b"]}"]),
                headers={**auth, "Content-Type": "application/json"},
            )
            assert streamed.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
        output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    requests = [line for line in lines if line["logger"] == "scoring.access"]
    assert any(r["request_id"] == "real-1" and r["rows"] == len(golden["data"]) for r in requests)
    assert api_key not in output


def test_refuses_a_model_with_the_wrong_sha(model_dir: Path, api_key: str) -> None:
    proc = _start(scoring_env(model_dir, "e" * 64, api_key, free_port()))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, output
    assert "refusing to start: sha256 mismatch" in output
    assert api_key not in output


def test_refuses_a_placeholder_key(model_dir: Path, model_sha: str) -> None:
    proc = _start(scoring_env(model_dir, model_sha, "changeme", free_port()))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, output
    assert "invalid setting" in output and "placeholder" in output
    assert "changeme" not in output
