"""``mlops`` refuses bad input with one clear line and exit 2 (no traceback), never takes a
blob outside landing, never uploads over a waiting file, and runs through the deployment
when there is one (issue 8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.states import Completed
from typer.testing import CliRunner

import mlops.cli as cli
import mlops.runs as runs
from backends.local.memory import InMemoryDataLake
from core.lake import Lake
from core.results import RetrainingSummary
from core.settings import get_settings

runner = CliRunner()


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Lake]:
    """The CLI on an in-memory lake, with a Prefect server that 'answers'."""
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    lake = Lake(InMemoryDataLake(), "landing", "curated", "quarantine")
    lake.ensure()
    monkeypatch.setattr(cli, "_lake", lambda settings: lake)
    monkeypatch.setattr(cli, "_require_prefect", lambda settings: None)
    monkeypatch.setattr(cli, "_use_local_prefect", lambda settings: None)
    yield lake
    get_settings.cache_clear()


def one_line_exit_2(result: Any, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for text in expected:
        assert text in lines[0], lines[0]


def test_retrain_with_bad_parameters(lake: Lake) -> None:
    one_line_exit_2(
        runner.invoke(cli.app, ["retrain", "--param", "alpha=-1"]),
        "retrain: ",
        "alpha",
    )


def test_retrain_refuses_a_blob_outside_landing(lake: Lake) -> None:
    lake.datalake.put("curated", "training/manifest.json", b"{}")
    one_line_exit_2(
        runner.invoke(cli.app, ["retrain", "--data", "curated/training/manifest.json"]),
        "not in the landing container 'landing'",
    )
    assert lake.datalake.exists("curated", "training/manifest.json")


def test_an_upload_never_overwrites_a_waiting_file(lake: Lake, tmp_path: Path) -> None:
    waiting = lake.datalake.put("landing", "batch.csv", b"theirs")
    (mine := tmp_path / "batch.csv").write_bytes(b"ours")
    (other := tmp_path / "new.csv").write_bytes(b"x")
    ours = runs.upload_once(lake, "batch.csv", mine)
    assert ours.name != "batch.csv" and ours.name.startswith("batch-")
    assert ours.name.endswith(".csv")
    assert lake.datalake.get("landing", ours.name)[0] == b"ours"
    assert lake.datalake.get("landing", "batch.csv")[0] == b"theirs"
    assert lake.datalake.get("landing", "batch.csv")[1].etag == waiting.etag
    assert runs.upload_once(lake, "batch.csv", mine).name == ours.name  # same upload
    assert runs.upload_once(lake, "new.csv", other).name == "new.csv"


def test_a_published_deployment_runs_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the deployment published, the CLI waits for a deployed run (its concurrency
    limit holds) and prints the typed result; it never calls the flow itself."""
    summary = RetrainingSummary(model="m", outcome="up to date", message="nothing to do")
    called: list[tuple[str, dict[str, Any]]] = []

    def deployed(name: str, parameters: dict[str, Any]) -> Any:
        called.append((name, parameters))
        return Completed(message="nothing to do", data=summary)

    monkeypatch.setattr(runs, "deployment_exists", lambda name: True)
    monkeypatch.setattr(runs, "run_deployed", deployed)
    monkeypatch.setattr(runs, "_flow", lambda name: pytest.fail("ran the flow in-process"))
    state, result = runs.run_flow("retraining/retraining", {"data_uri": None}, RetrainingSummary)
    assert called == [("retraining/retraining", {"data_uri": None})]
    assert state.is_completed() and result == summary
