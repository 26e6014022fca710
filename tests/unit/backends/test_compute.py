"""SubprocessCompute: detached jobs whose whole state lives in the job folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from backends.local._proc import pid_alive
from backends.local.compute import REPO_ROOT, SubprocessCompute
from backends.local.memory import InMemoryDataLake
from core.interfaces import (
    BackendError,
    BlobRef,
    Compute,
    JobState,
    NotFoundError,
    TrainingJobSpec,
)


def make_compute(tmp_path: Path, lake: InMemoryDataLake, stub: Path | None) -> SubprocessCompute:
    entrypoint = [str(stub)] if stub else ["-m", "training.train"]
    return SubprocessCompute(tmp_path / "jobs", lake, entrypoint=entrypoint, poll_interval=0.1)


def spec(ref: BlobRef, **params: object) -> TrainingJobSpec:
    return TrainingJobSpec(data_uri=ref.uri, params=dict(params), experiment="diabetes-ridge")


def test_is_a_compute(tmp_path: Path, memory_lake: InMemoryDataLake) -> None:
    assert isinstance(make_compute(tmp_path, memory_lake, None), Compute)


def test_job_completes_and_leaves_its_outputs_at_output_uri(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef, stub_trainer: Path
) -> None:
    compute = make_compute(tmp_path, memory_lake, stub_trainer)
    job_id = compute.submit(spec(data_ref, mode="ok", alpha=0.5))
    assert job_id.startswith("train-") and len(job_id.split("-")[-1]) == 6

    status = compute.wait(job_id, timeout=30)

    assert status.state is JobState.COMPLETED, status.message
    assert status.url.startswith("file://") and status.url.endswith("job.log")
    job_dir = tmp_path / "jobs" / job_id
    # The blob's file name (and so its extension) is kept.
    data, _ = memory_lake.get("curated", "sets/diabetes.csv")
    assert (job_dir / "inputs" / "diabetes.csv").read_bytes() == data
    recorded = json.loads((job_dir / "status.json").read_text())
    assert recorded["exit_code"] == 0 and recorded["started_at"] and recorded["ended_at"]
    command = json.loads((job_dir / "spec.json").read_text())["command"]
    assert json.loads(command[command.index("--params") + 1]) == {"mode": "ok", "alpha": 0.5}
    out = job_dir / "outputs"
    assert compute.output_uri(job_id) == out.as_uri()
    assert (out / "model.joblib").read_bytes() == data[:64]
    assert json.loads((out / "metrics.json").read_text())["params"]["alpha"] == 0.5
    assert "stub training on diabetes.csv" in compute.logs(job_id)


def test_real_training_job(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef
) -> None:
    compute = make_compute(tmp_path, memory_lake, None)
    job_id = compute.submit(spec(data_ref))

    status = compute.wait(job_id, timeout=120)

    assert status.state is JobState.COMPLETED, status.message
    out = tmp_path / "jobs" / job_id / "outputs"
    assert compute.output_uri(job_id) == out.as_uri()
    for name in ("model.joblib", "metrics.json", "run.json", "golden.json"):
        assert (out / name).is_file(), name


def test_real_training_rejects_bad_data(tmp_path: Path, memory_lake: InMemoryDataLake) -> None:
    ref = memory_lake.put("curated", "bad.csv", b"a,b\n1,2\n")
    compute = make_compute(tmp_path, memory_lake, None)

    status = compute.wait(compute.submit(spec(ref)), timeout=120)

    assert status.state is JobState.FAILED
    assert "exited with code 2" in status.message


def test_failed_job_reports_the_log_tail(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef, stub_trainer: Path
) -> None:
    compute = make_compute(tmp_path, memory_lake, stub_trainer)
    job_id = compute.submit(spec(data_ref, mode="fail"))

    status = compute.wait(job_id, timeout=30)

    assert status.state is JobState.FAILED
    assert "exited with code 2" in status.message
    assert "line before the error" in status.message and "boom: bad input" in status.message
    with pytest.raises(BackendError, match="failed"):
        compute.fetch_record(job_id, tmp_path / "dest")


def test_timeout_kills_the_job_and_marks_it_failed(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef, stub_trainer: Path
) -> None:
    compute = make_compute(tmp_path, memory_lake, stub_trainer)
    job_id = compute.submit(spec(data_ref, seconds=60))
    job_dir = tmp_path / "jobs" / job_id

    started = time.monotonic()
    status = compute.wait(job_id, timeout=1.5)

    assert time.monotonic() - started < 8
    assert status.state is JobState.FAILED
    assert "timed out after 1.5 s" in status.message
    recorded = json.loads((job_dir / "status.json").read_text())
    for pid in (recorded["pid"], recorded["child_pid"]):
        assert not pid_alive(pid), f"process {pid} survived the timeout"
    # A later reader sees the same verdict.
    assert compute.status(job_id).state is JobState.FAILED


def test_timeout_kills_a_job_that_ignores_sigterm(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef, stub_trainer: Path
) -> None:
    compute = SubprocessCompute(
        tmp_path / "jobs", memory_lake, entrypoint=[str(stub_trainer)], kill_grace=0.5
    )
    job_id = compute.submit(spec(data_ref, seconds=60, ignore_sigterm=True))
    job_dir = tmp_path / "jobs" / job_id
    while "child_pid" not in json.loads((job_dir / "status.json").read_text()):
        time.sleep(0.05)
    time.sleep(0.5)  # let the stub install its SIGTERM handler

    status = compute.wait(job_id, timeout=0.1)

    assert status.state is JobState.FAILED and "timed out" in status.message
    child = json.loads((job_dir / "status.json").read_text())["child_pid"]
    assert not pid_alive(child)


def test_status_is_read_by_another_instance(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef, stub_trainer: Path
) -> None:
    job_id = make_compute(tmp_path, memory_lake, stub_trainer).submit(spec(data_ref, seconds=0.5))
    fresh = make_compute(tmp_path, InMemoryDataLake(), stub_trainer)

    assert fresh.status(job_id).state in (JobState.QUEUED, JobState.RUNNING)
    assert fresh.wait(job_id, timeout=30).state is JobState.COMPLETED


def test_job_submitted_by_a_process_that_exits_is_watched_by_another(
    tmp_path: Path, diabetes_csv: bytes, stub_trainer: Path
) -> None:
    # The submitter exits at once: the job must survive it and be visible from here.
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from core.interfaces import TrainingJobSpec
        from backends.local.compute import SubprocessCompute
        from backends.local.memory import InMemoryDataLake
        lake = InMemoryDataLake()
        lake.ensure_containers("curated")
        ref = lake.put("curated", "d.csv", Path({str(tmp_path / "d.csv")!r}).read_bytes())
        compute = SubprocessCompute(Path({str(tmp_path / "jobs")!r}), lake,
                                    entrypoint=[{str(stub_trainer)!r}])
        print(compute.submit(TrainingJobSpec(ref.uri, {{"seconds": 1}}, "x")))
        """
    )
    (tmp_path / "d.csv").write_bytes(diabetes_csv)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()

    compute = make_compute(tmp_path, InMemoryDataLake(), stub_trainer)
    assert compute.wait(job_id, timeout=30).state is JobState.COMPLETED


def test_a_killed_runner_is_reported_as_failed(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef, stub_trainer: Path
) -> None:
    compute = make_compute(tmp_path, memory_lake, stub_trainer)
    job_id = compute.submit(spec(data_ref, seconds=60))
    pid = json.loads((tmp_path / "jobs" / job_id / "pid.json").read_text())["pid"]

    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    status = compute.status(job_id)
    assert status.state is JobState.FAILED
    assert "died without recording a result" in status.message


def test_unknown_jobs_are_not_found(tmp_path: Path, memory_lake: InMemoryDataLake) -> None:
    compute = make_compute(tmp_path, memory_lake, None)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "status.json").write_text('{"state": "completed"}')
    for job_id in ("train-20260101000000-abcdef", "..", "../", "a/../.."):
        with pytest.raises(NotFoundError):
            compute.status(job_id)
    with pytest.raises(NotFoundError):
        compute.logs("nope")
    with pytest.raises(NotFoundError):
        compute.wait("nope", timeout=1)
    with pytest.raises(NotFoundError):
        compute.fetch_record("nope", tmp_path / "dest")
    with pytest.raises(NotFoundError):
        compute.output_uri("nope")


def test_submit_with_missing_data_leaves_no_job(
    tmp_path: Path, memory_lake: InMemoryDataLake
) -> None:
    compute = make_compute(tmp_path, memory_lake, None)
    with pytest.raises(NotFoundError):
        compute.submit(spec(memory_lake.ref("curated/missing.parquet")))
    assert list((tmp_path / "jobs").iterdir()) == []


def test_jobs_get_only_the_environment_they_need(
    tmp_path: Path,
    memory_lake: InMemoryDataLake,
    data_ref: BlobRef,
    stub_trainer: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a Prefect worker's environment holds: the lake's connection string, cloud secrets.
    secrets = {
        "MLOPS_BLOB_CONNECTION_STRING": "AccountKey=" + os.urandom(16).hex(),
        "AZURE_CLIENT_SECRET": os.urandom(16).hex(),
        "SCORING_API_KEY": os.urandom(16).hex(),
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    compute = make_compute(tmp_path, memory_lake, stub_trainer)
    job_id = compute.submit(spec(data_ref, mode="ok", seconds=3))
    job_dir = tmp_path / "jobs" / job_id
    deadline = time.monotonic() + 20
    while "child_pid" not in (status := json.loads((job_dir / "status.json").read_text())):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    environs = [Path(f"/proc/{status[key]}/environ").read_bytes() for key in ("pid", "child_pid")]

    assert compute.wait(job_id, timeout=30).state is JobState.COMPLETED
    for environ in environs:  # the runner's and the training process's
        names = {entry.split(b"=", 1)[0].decode() for entry in environ.split(b"\0") if entry}
        assert not names & set(secrets), names
        assert "PATH" in names
    recorded = b"".join(path.read_bytes() for path in job_dir.rglob("*") if path.is_file())
    for value in secrets.values():
        assert all(value.encode() not in blob for blob in [*environs, recorded])
