"""``python -m scoring`` as a real process on loopback, for tests that need real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.utils.net import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    """A running service: its base URL and process (output collected at exit)."""

    url: str
    proc: subprocess.Popen[str]
    output: str = ""


def scoring_env(
    model_dir: Path, sha: str, key: str, port: int, **settings: str | int | float
) -> dict[str, str]:
    """This process's environment without its ``SCORING_*`` variables, plus the service's:
    model version 7 of ``model_dir`` on 127.0.0.1:``port`` and ``SCORING_<NAME>`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORING_")}
    env.update(
        SCORING_MODEL_DIR=str(model_dir),
        SCORING_MODEL_NAME="diabetes-ridge",
        SCORING_MODEL_VERSION="7",
        SCORING_MODEL_SHA256=sha,
        SCORING_API_KEY=key,
        SCORING_HOST="127.0.0.1",
        SCORING_PORT=str(port),
    )
    env.update({f"SCORING_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@contextmanager
def scoring_service(
    model_dir: Path, sha: str, key: str, **settings: str | int | float
) -> Iterator[Service]:
    """Run the scoring service until the block ends (SIGTERM, then wait).

    Args:
        model_dir: The model folder.
        sha: Its ``model.joblib`` sha256.
        key: The API key.
        settings: More ``SCORING_<NAME>`` settings (``header_timeout=1``).
    """
    port = free_port()
    env = scoring_env(model_dir, sha, key, port, **settings)
    # Output to a file, not a pipe: a pipe nobody reads fills up (64 KiB, ~270 request-log
    # lines) and the service then blocks on its next log line, every request with it.
    log = tempfile.TemporaryFile("w+", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scoring"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    service = Service(f"http://127.0.0.1:{port}", proc)

    def output() -> str:
        log.seek(0)
        return log.read()

    try:
        deadline = time.monotonic() + 60  # a shared, busy machine: imports can take a while
        while True:
            assert proc.poll() is None, output()
            try:
                if httpx.get(service.url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service was not ready within 60 s"
            time.sleep(0.1)
        yield service
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        service.output = output()
        log.close()
