"""The local backends together: training data read from Azurite, trained, registered."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes

from backends import get_backends
from core.interfaces import JobState, TrainingJobSpec
from core.settings import Settings
from training.artifacts import MODEL_FILE
from training.decision import read_record

pytestmark = pytest.mark.integration

COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]


def test_train_from_the_lake_and_register(lake_settings: Settings, tmp_path: Path) -> None:
    backends = get_backends(lake_settings)
    csv = load_diabetes(as_frame=True).frame[COLUMNS].to_csv(index=False).encode()
    ref = backends.datalake.put(lake_settings.curated_container, "sets/diabetes.csv", csv)

    job_id = backends.compute.submit(
        TrainingJobSpec(
            data_uri=ref.uri,
            params={"hyperparameters": {"alpha": 0.5}},
            experiment="diabetes-ridge",
        )
    )
    status = backends.compute.wait(job_id, timeout=120)

    assert status.state is JobState.COMPLETED, status.message
    # As the retraining flow does: the job's digest from its record, its model where it lies.
    record = read_record(backends.compute.fetch_record(job_id, tmp_path / "record"))
    version = backends.registry.register_output(
        lake_settings.model_name,
        backends.compute.output_uri(job_id),
        MODEL_FILE,
        record.challenger_sha256,
        {"training_job": job_id},
    )
    backends.registry.set_alias(lake_settings.model_name, "candidate", version.version)
    candidate = backends.registry.get_alias(lake_settings.model_name, "candidate")
    assert candidate is not None and candidate.tags == {"training_job": job_id}
    fetched = backends.registry.download(candidate.name, candidate.version, tmp_path / "fetched")
    outputs = lake_settings.jobs_path / job_id / "outputs"
    assert (fetched / MODEL_FILE).read_bytes() == (outputs / MODEL_FILE).read_bytes()
    assert (lake_settings.jobs_path / job_id / "inputs" / "diabetes.csv").read_bytes() == csv
