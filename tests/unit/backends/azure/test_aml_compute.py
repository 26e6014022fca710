"""AmlCompute against a fake workspace: the HTTP requests the real SDK sends."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import joblib
import pytest

from backends.azure.compute import AmlCompute, map_status
from core.interfaces import (
    BackendError,
    Compute,
    JobState,
    ModelInput,
    NotFoundError,
    TrainingJobSpec,
)
from core.settings import AzureSettings
from tests.utils.azure_ml_workspace import SAS, fake_download, serve_submit

DATA = "https://lake.blob.core.windows.net/curated/sets/2026-11/diabetes.csv"
CODE = "a1b2c3d4-0000-4000-8000-000000000001"


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    """A repository with a training package (plus the caches that must not be uploaded)."""
    root = tmp_path / "repo"
    (root / "training" / "__pycache__").mkdir(parents=True)
    (root / "training" / "__init__.py").write_text("")
    (root / "training" / "train.py").write_text("print('train')\n")
    (root / "training" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    (root / ".venv").mkdir()
    return root


SETTINGS = AzureSettings(
    subscription_id="sub",
    resource_group="rg",
    workspace="ws",
    environment="azureml:diabetes-train-env@latest",
    compute_name="cpu-cluster",
    job_poll_seconds=15.0,
)


@pytest.fixture
def settings() -> AzureSettings:
    return SETTINGS


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def compute(aml: Any, settings: AzureSettings, code_dir: Path, clock: FakeClock) -> AmlCompute:
    return AmlCompute(
        aml.client, settings, code_dir, sleep=clock.sleep, clock=lambda: clock.now, cancel_wait=5
    )


def test_is_a_compute(compute: AmlCompute) -> None:
    assert isinstance(compute, Compute)


def test_submit_uploads_the_training_package_and_puts_the_job(
    aml: Any, compute: AmlCompute
) -> None:
    serve_submit(aml)
    params = {"alpha": 0.5, "note": "it's"}
    spec = TrainingJobSpec(
        data_uri=DATA, params=params, experiment="diabetes", display_name="retrain", tags={"a": "b"}
    )

    job_id = compute.submit(spec)

    assert re.fullmatch(r"train-\d{14}-[0-9a-f]{6}", job_id)
    methods = [
        (r.method, re.sub(r"\?.*", "", r.url).split("/workspaces/ws-mlops/")[1])
        for r in aml.transport.requests
    ]
    assert [m for m, _ in methods] == ["GET", "POST", "PUT", "GET", "PUT"]
    assert methods[-1] == ("PUT", f"jobs/{job_id}")
    (put,) = aml.transport.sent("PUT", rf"/workspaces/ws-mlops/jobs/{job_id}\?api-version=")
    assert put.headers["Authorization"] == "Bearer fake-token"
    body = put.json()["properties"]
    quoted = shlex.quote(json.dumps(params, sort_keys=True))
    assert body["command"] == (
        "python -m training.train --data ${{inputs.data}} --output ${{outputs.model}} "
        f"--params {quoted} --decision ${{{{outputs.decision}}}}"
    )
    assert body["jobType"] == "Command"
    # "azureml:name@latest" was resolved to the newest registered version.
    assert body["environmentId"] == f"{aml.arm}/environments/diabetes-train-env/versions/7"
    assert body["computeId"] == f"{aml.arm}/computes/cpu-cluster"
    # No champion yet: no model input, and the record holds the challenger alone.
    assert body["inputs"] == {"data": {"uri": DATA, "jobInputType": "uri_file"}}
    assert body["outputs"] == {
        "model": {"jobOutputType": "uri_folder"},
        "decision": {"jobOutputType": "uri_folder"},
    }
    assert body["experimentName"] == "diabetes"
    assert body["displayName"] == "retrain"
    assert body["tags"] == {"a": "b"}
    (code_put,) = aml.transport.sent("PUT", r"/codes/")
    code_id = code_put.url.split("?")[0].split("management.azure.com")[1]
    assert body["codeId"] == code_id
    # Only the training package went up, to the upload slot the service handed out.
    (upload,) = aml.blobs.uploads
    assert upload["files"] == ["training/__init__.py", "training/train.py"]
    assert (upload["account"], upload["container"]) == ("wsstore", "azureml-blobstore-0001")
    assert code_put.json()["properties"]["codeUri"].startswith(SAS.split("?")[0] + "/LocalUpload/")


def test_submit_refuses_local_data_and_bindings(aml: Any, compute: AmlCompute) -> None:
    with pytest.raises(ValueError, match="cloud storage"):
        compute.submit(TrainingJobSpec(data_uri="/tmp/data.csv", params={}, experiment="e"))
    with pytest.raises(ValueError, match=r"\$\{\{"):
        compute.submit(TrainingJobSpec(data_uri=DATA, params={"x": "${{x}}"}, experiment="e"))
    assert aml.transport.requests == []


def test_submit_reports_a_refused_job(aml: Any, compute: AmlCompute) -> None:
    serve_submit(aml)
    error = {"error": {"code": "UserError", "message": "compute cpu-cluster not found"}}
    aml.transport.route("PUT", r"/jobs/[^/?]+\?", aml.Reply(400, error))
    with pytest.raises(BackendError, match="cpu-cluster not found"):
        compute.submit(TrainingJobSpec(data_uri=DATA, params={}, experiment="e"))


def test_submit_reports_a_failed_code_upload(aml: Any, compute: AmlCompute) -> None:
    serve_submit(aml)
    denied = {"error": {"code": "AuthorizationFailed", "message": "no write access"}}
    aml.transport.route("POST", r"/startPendingUpload\?", aml.Reply(403, denied))
    with pytest.raises(BackendError, match="refused"):
        compute.submit(TrainingJobSpec(data_uri=DATA, params={}, experiment="e"))
    assert aml.transport.sent("PUT", r"/jobs/") == []


@pytest.mark.parametrize(
    ("aml_status", "state"),
    [
        ("NotStarted", JobState.QUEUED),
        ("Queued", JobState.QUEUED),
        ("Provisioning", JobState.QUEUED),
        ("Preparing", JobState.QUEUED),
        ("Starting", JobState.QUEUED),
        ("Running", JobState.RUNNING),
        ("Finalizing", JobState.RUNNING),
        ("CancelRequested", JobState.RUNNING),
        ("NotResponding", JobState.RUNNING),
        ("Paused", JobState.QUEUED),
        ("Completed", JobState.COMPLETED),
        ("Failed", JobState.FAILED),
        ("Canceled", JobState.CANCELED),
        ("SomethingNew", JobState.RUNNING),
    ],
)
def test_status_maps_aml_states(
    aml: Any, compute: AmlCompute, aml_status: str, state: JobState
) -> None:
    aml.transport.route("GET", r"/jobs/job-1\?", aml.job_json("job-1", aml_status))

    status = compute.status("job-1")

    assert (status.job_id, status.state) == ("job-1", state)
    assert aml_status in status.message
    assert status.url == "https://ml.azure.com/runs/job-1"
    (get,) = aml.transport.sent("GET", r"/workspaces/ws-mlops/jobs/job-1\?api-version=")
    assert map_status(aml_status) is state


def test_status_of_an_unknown_job(aml: Any, compute: AmlCompute) -> None:
    missing = {"error": {"code": "UserError", "message": "job not found"}}
    aml.transport.route("GET", r"/jobs/nope\?", aml.Reply(404, missing))
    with pytest.raises(NotFoundError):
        compute.status("nope")


def serve_statuses(aml: Any, name: str, statuses: list[str]) -> None:
    """Answer job GETs with ``statuses`` in turn, repeating the last one."""
    queue = list(statuses)

    def get(request: Any) -> dict[str, Any]:
        return aml.job_json(name, queue.pop(0) if len(queue) > 1 else queue[0])

    aml.transport.route("GET", rf"/jobs/{name}\?", get)


def test_wait_polls_at_the_configured_interval(
    aml: Any, compute: AmlCompute, clock: FakeClock
) -> None:
    serve_statuses(aml, "job-2", ["Queued", "Running", "Completed"])

    status = compute.wait("job-2", timeout=600)

    assert status.state is JobState.COMPLETED
    assert clock.sleeps == [15.0, 15.0]
    assert len(aml.transport.sent("GET", r"/jobs/job-2\?")) == 3
    assert aml.transport.sent("POST", r"/cancel") == []


def test_wait_cancels_a_job_that_runs_too_long(
    aml: Any, compute: AmlCompute, clock: FakeClock
) -> None:
    serve_statuses(aml, "job-3", ["Running", "Running", "Running", "CancelRequested"])
    poll = "https://management.azure.com/operations/cancel-job-3"
    accepted = aml.Reply(202, None, {"Location": poll, "Retry-After": "0"})
    aml.transport.route("POST", r"/workspaces/ws-mlops/jobs/job-3/cancel\?api-version=", accepted)
    aml.transport.route("GET", r"/operations/cancel-job-3", aml.Reply(200, {}))

    status = compute.wait("job-3", timeout=40)

    assert status.state is JobState.FAILED
    assert "timed out after 40 s" in status.message and "CancelRequested" in status.message
    assert clock.sleeps == [15.0, 15.0, 10.0]
    assert len(aml.transport.sent("POST", r"/jobs/job-3/cancel")) == 1
    # The cancel is a long-running operation: its status URL was polled to the end.
    assert aml.transport.sent("GET", r"/operations/cancel-job-3")


def test_wait_keeps_a_job_that_completed_while_being_canceled(
    aml: Any, compute: AmlCompute
) -> None:
    serve_statuses(aml, "job-4", ["Running", "Completed"])
    conflict = {"error": {"code": "UserError", "message": "job already completed"}}
    aml.transport.route("POST", r"/jobs/job-4/cancel\?", aml.Reply(409, conflict))

    assert compute.wait("job-4", timeout=0).state is JobState.COMPLETED


def test_logs_reads_the_user_logs(
    aml: Any, compute: AmlCompute, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = {"artifacts/user_logs/std_log.txt": "fitting ridge\n", "artifacts/system.json": "{}"}
    calls = fake_download(monkeypatch, aml, logs)

    assert compute.logs("job-8") == "== std_log.txt\nfitting ridge\n"
    assert calls[0]["output_name"] is None


def test_logs_never_raise(aml: Any, compute: AmlCompute, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_download(monkeypatch, aml, RuntimeError("job is still running"))
    assert compute.logs("job-9").startswith("(logs unavailable: job is still running")


CHAMPION = ModelInput(
    name="diabetes-ridge",
    version="3",
    uri="azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/d/paths/m",
    sha256="ab" * 32,
)


def test_submit_hands_the_champion_to_the_job_as_a_model_input(
    aml: Any, compute: AmlCompute
) -> None:
    serve_submit(aml)
    spec = TrainingJobSpec(data_uri=DATA, params={}, experiment="e", champion=CHAMPION)

    job_id = compute.submit(spec)

    (put,) = aml.transport.sent("PUT", rf"/jobs/{job_id}\?")
    body = put.json()["properties"]
    # The registered model itself (the SDK sends "azureml:diabetes-ridge:3" as the version's
    # resource id): the job mounts it; the worker neither downloads nor uploads it.
    assert body["inputs"]["champion"] == {
        "uri": f"{aml.arm}/models/diabetes-ridge/versions/3",
        "jobInputType": "custom_model",
    }
    assert set(body["outputs"]) == {"model", "decision"}
    assert body["resources"]["instanceCount"] == 1
    assert body["command"].endswith(
        "--decision ${{outputs.decision}} --champion ${{inputs.champion}} "
        f"--champion-version 3 --champion-sha256 {'ab' * 32}"
    )
    # Scoring runs in the one training environment built from the lock.
    assert body["environmentId"] == f"{aml.arm}/environments/diabetes-train-env/versions/7"
    assert aml.transport.sent("GET", r"/models/") == []


def test_fetch_record_downloads_the_decision_output_only(
    aml: Any, compute: AmlCompute, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aml.transport.route("GET", r"/jobs/job-10\?", aml.job_json("job-10", "Completed"))
    calls = fake_download(monkeypatch, aml, {"named-outputs/decision/decision.json": "{}"})

    def no_unpickling(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the worker loaded a model file")

    monkeypatch.setattr(joblib, "load", no_unpickling)

    record = compute.fetch_record("job-10", tmp_path)

    assert record == tmp_path / "job-10" / "named-outputs" / "decision" / "decision.json"
    assert calls == [
        {"name": "job-10", "download_path": str(tmp_path / "job-10"), "output_name": "decision"}
    ]
    assert compute.output_uri("job-10") == "azureml://jobs/job-10/outputs/model"


def test_fetch_record_needs_a_completed_job_with_a_record(
    aml: Any, compute: AmlCompute, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aml.transport.route("GET", r"/jobs/job-11\?", aml.job_json("job-11", "Running"))
    aml.transport.route("GET", r"/jobs/job-12\?", aml.job_json("job-12", "Completed"))
    calls = fake_download(monkeypatch, aml, {"named-outputs/decision/other.txt": ""})

    with pytest.raises(BackendError, match="running, no decision record"):
        compute.fetch_record("job-11", tmp_path)
    assert calls == []
    with pytest.raises(BackendError, match="no decision.json"):
        compute.fetch_record("job-12", tmp_path)


def test_instance_count_passes_through_for_multi_node_estimators(
    aml: Any, settings: AzureSettings, code_dir: Path
) -> None:
    serve_submit(aml)
    compute = AmlCompute(aml.client, settings.model_copy(update={"instance_count": 3}), code_dir)

    job_id = compute.submit(TrainingJobSpec(data_uri=DATA, params={}, experiment="e"))

    (put,) = aml.transport.sent("PUT", rf"/jobs/{job_id}\?")
    assert put.json()["properties"]["resources"]["instanceCount"] == 3
