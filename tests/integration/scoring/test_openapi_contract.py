"""The OpenAPI document says exactly what the service does: schemathesis, every check.

The service runs as a real process on loopback; schemathesis (``schemathesis.toml`` beside
this file) reads its ``/swagger.json`` and sends schema-valid and schema-invalid requests
(bounded examples, fixed seed). Valid requests must be served, invalid ones refused with a
documented status, and every response must match its documented status, type and schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.scoring_process import scoring_service

pytest.importorskip("schemathesis", reason="`make setup` installs it (.[dev])")

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_all_checks_pass(
    model_dir: Path, model_sha: str, api_key: str, tmp_path: Path
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
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert api_key not in service.output
