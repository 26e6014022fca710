"""The OpenAPI document says exactly what the service does: schemathesis, every check.

The service runs as a real process on loopback; schemathesis (``schemathesis.toml`` beside
this file) reads its ``/swagger.json`` and sends schema-valid and schema-invalid requests
(bounded examples, fixed seed). Valid requests must be served, invalid ones refused with a
documented status, and every response must match its documented status, type and schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.figures import ReliabilityFigures
from tests.utils.scoring_process import scoring_service

pytest.importorskip("schemathesis", reason="`make setup` installs it (.[dev])")

CONFIG = Path(__file__).with_name("schemathesis.toml")


def _statuses(output: str) -> list[int]:
    """The statuses of the service's request log (one JSON line per request)."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line["status"] for line in lines if line.get("logger") == "scoring.access"]


def test_schemathesis_all_checks_pass(
    model_dir: Path,
    model_sha: str,
    api_key: str,
    tmp_path: Path,
    reliability_figures: ReliabilityFigures,
) -> None:
    with scoring_service(model_dir, model_sha, api_key) as service:
        env = {**os.environ, "SCORING_TEST_API_KEY": api_key, "NO_COLOR": "1"}
        run = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
                "run", f"{service.url}/swagger.json", "--checks", "all",
                "--max-examples", "40", "--seed", "20261202", "--workers", "1",
                "--request-timeout", "10",
                "--report", "junit", "--report-dir", str(tmp_path),
            ],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    statuses = _statuses(service.output)
    n5xx = sum(status >= 500 for status in statuses)
    reliability_figures.add("schemathesis against the service", n5xx=n5xx)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert len(statuses) > 100 and n5xx == 0, (len(statuses), n5xx)
    assert api_key not in service.output
