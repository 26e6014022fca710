"""No secret reaches Prefect: a retraining and a release on a real Prefect server leave the
scoring key and the storage account key out of flow and task parameters, artifacts, logs,
persisted results and the training job's folder."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogWorker

from backends import get_backends, get_release_backends
from core.results import RetrainingSummary
from core.settings import AZURITE_KEY, Settings
from flows.outcome import result_of
from flows.release import release
from flows.retraining import retraining
from tests.utils.figures import ReliabilityFigures
from tests.utils.flow_harness import ReleaseSettings

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def process_settings(release_to: ReleaseSettings) -> Settings:
    return release_to("process", smoke_requests=20)


def _recorded(flow_run_ids: list[UUID]) -> str:
    """Everything the Prefect server keeps about these flow runs, as one text."""
    # Run logs reach the server from a background worker: send what it holds before asking
    # (clean-clone CI, under load, once read no logs yet).
    APILogWorker.drain_all(timeout=30)
    runs = FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
    with get_client(sync_client=True) as client:
        parts = [client.read_flow_run(run_id).model_dump_json() for run_id in flow_run_ids]
        parts += [t.model_dump_json() for t in client.read_task_runs(flow_run_filter=runs)]
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=flow_run_ids))
        )
        parts += [a.model_dump_json() for a in artifacts]
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)))
        parts += [log.model_dump_json() for log in logs]
    assert artifacts and logs  # the query found the runs' records
    return "\n".join(parts)


def test_no_secret_in_prefect_records_results_or_job_folders(
    process_settings: Settings, reliability_figures: ReliabilityFigures
) -> None:
    settings = process_settings
    lake = get_backends(settings).datalake
    lake.ensure_containers(settings.landing_container)
    data = (DATA / "good" / "diabetes_batch_b.csv").read_bytes()
    ref = lake.put(settings.landing_container, "batch_b.csv", data)
    trained = retraining(data_uri=ref.uri, return_state=True)
    summary = result_of(trained, RetrainingSummary)
    assert trained.is_completed() and summary is not None, trained.message
    released = release(return_state=True)
    assert released.is_completed(), released.message
    production = get_release_backends(settings).target.current("production")
    assert production is not None
    secrets = {"scoring key": production.key, "storage account key": AZURITE_KEY}

    run_ids = [state.state_details.flow_run_id for state in (trained, released)]
    recorded = _recorded([run_id for run_id in run_ids if run_id is not None])
    found = [f"the {name} in Prefect's records" for name, v in secrets.items() if v in recorded]
    # Persisted results (Prefect's local storage) and every file the runs left locally.
    folders = [Path(os.environ["PREFECT_HOME"]), settings.jobs_path, settings.targets_path]
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "api_key":
                blob = path.read_bytes()
                found += [f"the {n} in {path}" for n, v in secrets.items() if v.encode() in blob]
    reliability_figures.add("secrets in Prefect and job folders", secrets_found=len(found))
    assert found == []
