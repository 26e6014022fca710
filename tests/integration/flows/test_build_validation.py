"""The build-validation flow on the session's Prefect server: the three checks run for real (on
small targets, to stay fast), the artifacts tell what happened, failures block publishing."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.states import State

from core.results import BuildValidationReport
from core.settings import Settings
from flows.build_validation import build_validation
from flows.outcome import result_of

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data"
CORPUS = json.loads((DATA / "corpus.json").read_text())
SMALL = {  # small, real targets: the checks stay quick
    "pytest_args": ["tests/unit/core/test_watch.py"],
    "lint_paths": ["core/watch.py"],
    "timeout_seconds": 300.0,
    "min_coverage": 0.0,  # one test file covers little of the project
}


def artifacts(state: State[Any]) -> dict[str, Any]:
    """The run's artifacts by key: markdown as text, tables as lists of rows."""
    run_id = state.state_details.flow_run_id
    assert isinstance(run_id, UUID)
    query = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=query)
    return {
        a.key: json.loads(a.data) if a.type == "table" else a.data
        for a in found
        if a.key and isinstance(a.data, str)
    }


def small_corpus(tmp_path: Path, *, mislabel: bool = False) -> str:
    """A corpus of one good and one bad file; ``mislabel`` calls the good one bad."""
    good, bad = "good/diabetes_batch_a.csv", "bad/out_of_range.csv"
    labels = {good: dict(CORPUS[good]), bad: CORPUS[bad]}
    if mislabel:
        labels[good] = {"verdict": "fail", "must_fail": [CORPUS[bad]["must_fail"][0]]}
    for name in labels:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / name, tmp_path / name)
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps(labels))
    return str(corpus)


def recorder(marker: Path) -> list[str]:
    """A stand-in publish command that records what prefect.yaml would be published with."""
    code = (
        "import json, os, sys; json.dump({k: v for k, v in os.environ.items() "
        "if k == 'PREFECT_API_URL' or k.startswith('MLOPS_')}, open(sys.argv[1], 'w'))"
    )
    return [sys.executable, "-c", code, str(marker)]


def test_all_checks_pass_and_publishing_can_be_skipped(prefect_server: str) -> None:
    state = build_validation(publish=False, return_state=True, **SMALL)  # the whole corpus

    assert state.is_completed(), state.message
    assert state.message == "all checks passed; publishing skipped"
    summary = result_of(state, BuildValidationReport)
    assert summary is not None
    assert summary.passed and summary.failing == () and summary.published is None
    found = artifacts(state)
    assert found["build-validation"].startswith("# Build validation: passed")
    assert "| publish | ⏭ not run | publish=False |" in found["build-validation"]
    for check in ("code-quality", "unit-tests", "data-tests"):
        assert f"| {check} | ✅ passed |" in found["build-validation"]
    [tests] = found["unit-tests"]
    assert tests["tests"] == tests["passed"] > 0 and tests["failed"] == tests["errors"] == 0
    assert 0 < tests["coverage %"] <= 100
    rows = {row["file"]: row for row in found["data-tests"]}
    assert set(rows) == set(CORPUS)
    assert all(row["verdict"] == "ok" for row in rows.values())
    assert rows["bad/out_of_range.csv"]["validation"] == "failed"
    assert rows["good/diabetes_batch_a.csv"]["validation"] == "passed"


def test_publishes_with_the_current_prefect_api_when_all_checks_pass(
    settings: Settings, prefect_server: str, tmp_path: Path
) -> None:
    marker = tmp_path / "published"
    state = build_validation(
        corpus=small_corpus(tmp_path), publish_command=recorder(marker), return_state=True, **SMALL
    )
    assert state.is_completed(), state.message
    assert state.message == "all checks passed; deployments published"
    env = json.loads(marker.read_text())
    assert env["PREFECT_API_URL"] == prefect_server  # the API this run reports to
    assert env["MLOPS_PROJECT_DIR"] == str(REPO) and env["MLOPS_CODE_VERSION"]
    assert env["MLOPS_LANDING_CONTAINER"] == settings.landing_container
    assert "| publish | ✅ published |" in artifacts(state)["build-validation"]


@pytest.mark.parametrize("broken", ["lint", "data", "both", "coverage"])
def test_a_failing_check_fails_the_run_and_blocks_publishing(
    prefect_server: str, tmp_path: Path, broken: str
) -> None:
    lint_paths = SMALL["lint_paths"]
    if broken in ("lint", "both"):
        bad = tmp_path / "bad_module.py"
        bad.write_text("import os\n")  # F401: imported but unused
        lint_paths = [str(bad)]
    marker = tmp_path / "published"
    state = build_validation(
        corpus=small_corpus(tmp_path, mislabel=broken in ("data", "both")),
        publish_command=recorder(marker),
        return_state=True,
        **{
            **SMALL,
            "lint_paths": lint_paths,
            # One test file covers a few percent of the project: far below a 90% floor.
            "min_coverage": 90.0 if broken == "coverage" else 0.0,
        },
    )

    expected = {
        "lint": ["code-quality"],
        "data": ["data-tests"],
        "both": ["code-quality", "data-tests"],
        "coverage": ["unit-tests"],
    }[broken]
    assert state.is_failed()
    assert state.message == "build validation failed: " + ", ".join(expected)
    summary = result_of(state, BuildValidationReport)
    assert summary is not None and list(summary.failing) == expected
    assert not marker.exists()  # nothing published
    report = artifacts(state)["build-validation"]
    assert report.startswith(f"# Build validation: FAILED ({', '.join(expected)})")
    assert "| publish | ⏭ not run | checks failed |" in report
    if broken == "coverage":
        assert "coverage below the 90% floor" in report
    else:
        assert "| unit-tests | ✅ passed |" in report
    if "code-quality" in expected:
        assert "F401" in report  # the failing output's tail
    if "data-tests" in expected:
        assert "good/diabetes_batch_a.csv: expected to fail, but passed" in report
        rows = {row["file"]: row["verdict"] for row in artifacts(state)["data-tests"]}
        assert rows == {"good/diabetes_batch_a.csv": "WRONG", "bad/out_of_range.csv": "ok"}
