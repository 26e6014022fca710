"""The local job evaluates: a real ``python -m training.train`` subprocess scores the champion
it was handed and writes the decision record; the model is registered from where it lies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.local.compute import SubprocessCompute
from backends.local.memory import InMemoryDataLake
from backends.local.registry import LocalModelRegistry
from core.interfaces import BlobRef, IntegrityError, JobState, ModelInput, TrainingJobSpec
from training.artifacts import DECISION_FILE, MODEL_FILE, sha256_file
from training.decision import read_record
from training.params import TrainingParams

NAME = "diabetes-ridge"


def run_job(compute: SubprocessCompute, spec: TrainingJobSpec) -> str:
    job_id = compute.submit(spec)
    status = compute.wait(job_id, timeout=120)
    assert status.state is JobState.COMPLETED, status.message
    return job_id


def test_the_subprocess_job_scores_the_champion_and_writes_the_record(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef
) -> None:
    compute = SubprocessCompute(tmp_path / "jobs", memory_lake, poll_interval=0.1)
    registry = LocalModelRegistry(tmp_path / "registry")
    params = TrainingParams(seed=7)
    first = run_job(compute, TrainingJobSpec(data_ref.uri, params.model_dump(), NAME))
    record = read_record(compute.fetch_record(first, tmp_path / "records"))
    assert record.champion is None and record.params_digest == params.digest()
    champion = registry.register_output(
        NAME, compute.output_uri(first), MODEL_FILE, record.challenger_sha256, {}
    )

    spec = TrainingJobSpec(data_ref.uri, {}, NAME, champion=ModelInput.of(champion))
    second = run_job(compute, spec)

    path = compute.fetch_record(second, tmp_path / "records")
    assert path == tmp_path / "records" / second / DECISION_FILE
    assert sorted(p.name for p in path.parent.iterdir()) == [DECISION_FILE]  # nothing else
    record = read_record(path)
    assert record.champion is not None
    assert (record.champion.version, record.champion.sha256) == ("1", champion.sha256)
    # Both scored on the rows of this job's holdout (seed 42), which the champion's was not.
    assert record.champion.metrics.n == record.challenger.n == record.holdout_rows
    assert record.params_digest == TrainingParams().digest()
    job_dir = tmp_path / "jobs" / second
    # The job read a copy of the champion (as Azure ML mounts a model input), not the registry.
    assert sha256_file(job_dir / "inputs" / "champion" / MODEL_FILE) == champion.sha256
    command = json.loads((job_dir / "spec.json").read_text())["command"]
    assert command[command.index("--champion-sha256") + 1] == champion.sha256
    assert compute.output_uri(second) == (job_dir / "outputs").as_uri()


def test_a_model_other_than_the_recorded_one_is_not_registered(
    tmp_path: Path, memory_lake: InMemoryDataLake, data_ref: BlobRef
) -> None:
    compute = SubprocessCompute(tmp_path / "jobs", memory_lake, poll_interval=0.1)
    registry = LocalModelRegistry(tmp_path / "registry")
    job_id = run_job(compute, TrainingJobSpec(data_ref.uri, {}, NAME))
    record = read_record(compute.fetch_record(job_id, tmp_path / "records"))
    (tmp_path / "jobs" / job_id / "outputs" / MODEL_FILE).write_bytes(b"swapped after the job")

    with pytest.raises(IntegrityError, match="the job recorded " + record.challenger_sha256):
        registry.register_output(
            NAME, compute.output_uri(job_id), MODEL_FILE, record.challenger_sha256, {}
        )
    assert registry.list_versions(NAME) == []
