"""``mlops retrain`` and ``mlops status`` on a running local stack (the session's, see
``conftest.py``): what a user reads after each command, and its exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from backends.blob_datalake import BlobDataLake
from backends.local.registry import LocalModelRegistry

pytestmark = pytest.mark.integration

BAD_FILE = Path(__file__).resolve().parents[2] / "data" / "bad" / "out_of_range.csv"


def output(result: Any) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def versions(stack: Any) -> list[str]:
    """Registered versions, read from the stack's registry (quicker than `mlops status`)."""
    registry = LocalModelRegistry(stack.settings.registry_path)
    return [v.version for v in registry.list_versions(stack.settings.model_name)]


def test_retrain_on_the_seed_registers_and_status_lists_it(stack: Any) -> None:
    result = stack.mlops("retrain")
    assert result.returncode == 0, output(result)
    assert "retraining Completed: Registered diabetes-ridge v1 (alias candidate)" in result.stdout
    assert "diabetes-seed.csv: merged (442 rows, training_data suite)" in result.stdout
    assert f"Prefect UI: http://127.0.0.1:{stack.prefect_port}/runs" in result.stdout

    status = stack.mlops("status")
    assert status.returncode == 0, output(status)
    pids = stack.pids()
    assert "profile: local" in status.stdout
    assert f"azurite         running (pid {pids['azurite']})" in status.stdout
    assert f"prefect-server  running (pid {pids['prefect-server']})" in status.stdout
    assert "model diabetes-ridge: 1 version(s)" in status.stdout
    assert re.search(
        r"^  v1 +candidate +sha256 [0-9a-f]{12}  data [0-9a-f]{12}$", status.stdout, re.M
    )
    assert "curated data: 442 rows from 1 file(s)" in status.stdout
    assert re.search(r"^qa +not deployed +- +- +- +- +never$", status.stdout, re.M)
    assert re.search(r"^production +not deployed +- +- +- +- +never$", status.stdout, re.M)
    assert f"Prometheus: http://127.0.0.1:{stack.prometheus_port}\n" in status.stdout

    machine = stack.mlops("status", "--json")
    assert machine.returncode == 0, output(machine)
    report = json.loads(machine.stdout)
    assert report["prometheus_up"] is True
    assert [e["environment"] for e in report["environments"]] == ["qa", "production"]
    assert all(e["model_version"] is None for e in report["environments"])


def test_retrain_with_a_bad_local_file_quarantines_it(stack: Any) -> None:
    before = versions(stack)

    result = stack.mlops("retrain", "--data", str(BAD_FILE))

    assert result.returncode == 1, output(result)
    out = result.stdout
    assert re.search(r"uploaded .*out_of_range\.csv -> http://127\.0\.0\.1:\d+/.*/landing/", out)
    assert "retraining Failed: 1 file(s) quarantined" in out
    assert "out_of_range.csv: quarantined (" in out
    assert "s5: expect_column_values_to_be_between" in out  # the failing expectation
    match = re.search(r"quarantined as: (\S+) \(\+ \.reason\.json\)", out)
    assert match, out
    # The file is in quarantine, byte for byte, with its reason beside it; landing is empty.
    lake = BlobDataLake(stack.settings.blob_connection)
    ref = lake.ref(match.group(1))
    assert ref.container == "quarantine"
    assert lake.get(ref.container, ref.name)[0] == BAD_FILE.read_bytes()
    reason = json.loads(lake.get(ref.container, f"{ref.name}.reason.json")[0])
    assert "expect_column_values_to_be_between" in json.dumps(reason)
    assert lake.list("landing") == []
    # Nothing was trained or registered.
    assert versions(stack) == before
