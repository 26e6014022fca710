"""``mlops batch-score``: a local file is uploaded to the batch container (never over another
file of that name), a blob is passed as is, and the flow's report is printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect.states import Completed, Failed
from typer.testing import CliRunner

import flows.batch_scoring
import mlops.cli as cli
import mlops.runs
from backends.local.memory import InMemoryDataLake
from core.lake import Lake
from core.results import BatchScoringReport
from core.settings import Settings


@pytest.fixture
def lake() -> Lake:
    return Lake(InMemoryDataLake(), "landing", "curated", "quarantine")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, lake: Lake, tmp_path: Path) -> list[dict[str, Any]]:
    """Stand-ins for the stack and the flow; returns what the flow was called with."""
    seen: list[dict[str, Any]] = []

    def fake_flow(**kwargs: Any) -> Any:
        seen.append(kwargs)
        if "bad" in kwargs["input_uri"]:
            return Failed(message="batch scoring of bad.csv failed: no column s3")
        report = BatchScoringReport(
            model="m",
            version="4",
            outcome="scored",
            message="scored 3 rows",
            input_uri=kwargs["input_uri"],
            output_uri="memory://datalake/batch/x.predictions/",
            predictions_uri="memory://datalake/batch/x.predictions/predictions.parquet",
        )
        return Completed(message=report.message, data=report)

    monkeypatch.setattr(cli, "_settings", lambda: Settings(state_dir=tmp_path))
    monkeypatch.setattr(cli, "_use_local_prefect", lambda settings: None)
    monkeypatch.setattr(cli, "_require_prefect", lambda settings: None)
    monkeypatch.setattr(cli, "_lake", lambda settings: lake)
    monkeypatch.setattr(mlops.runs, "deployment_exists", lambda name: False)
    monkeypatch.setattr(flows.batch_scoring, "batch_scoring", fake_flow)
    return seen


def test_a_local_file_is_uploaded_then_scored(
    calls: list[dict[str, Any]], lake: Lake, tmp_path: Path
) -> None:
    source = tmp_path / "x.csv"
    source.write_text("age\n1\n")
    lake.datalake.ensure_containers("batch")
    lake.datalake.put("batch", "x.csv", b"someone else's file")

    result = CliRunner().invoke(cli.app, ["batch-score", str(source), "--format", "csv"])

    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["output_format"] == "csv" and call["model_version"] is None
    uploaded = lake.datalake.ref(call["input_uri"])
    assert uploaded.name.startswith("x-") and uploaded.name.endswith(".csv")
    assert lake.datalake.get("batch", uploaded.name)[0] == b"age\n1\n"
    assert lake.datalake.get("batch", "x.csv")[0] == b"someone else's file"
    assert "predictions: memory://datalake/batch/x.predictions/predictions.parquet" in result.output


def test_a_blob_is_passed_as_is_and_a_failure_exits_1(calls: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli.app, ["batch-score", "batch/bad.csv", "--version", "2"])
    assert result.exit_code == 1
    assert calls[0]["input_uri"] == "batch/bad.csv" and calls[0]["model_version"] == "2"
    assert "no column s3" in result.output
