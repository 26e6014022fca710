"""Tasks that train on the compute backend and judge the challenger by the job's record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from core.interfaces import Compute, JobState, TrainingJobSpec
from training.decision import DecisionRecord, read_record
from training.evaluate import Decision
from training.params import GateConfig


class TrainingJobFailed(RuntimeError):
    """The compute backend ran the job and it failed; the message carries the job's log tail."""


@dataclass(frozen=True)
class TrainedChallenger:
    """A completed training job: its id, where its model folder lies, and its record."""

    job_id: str
    output_uri: str
    record: DecisionRecord

    @classmethod
    def of(cls, compute: Compute, job_id: str, dest: Path) -> TrainedChallenger:
        """A completed job's challenger: its decision record (JSON only: no model file is
        fetched or loaded) and where its model folder lies."""
        record = read_record(compute.fetch_record(job_id, dest))
        return cls(job_id, compute.output_uri(job_id), record)


@task(name="train-on-compute", cache_policy=NONE)
def train_on_compute(
    compute: Compute, spec: TrainingJobSpec, timeout: float, dest: Path
) -> TrainedChallenger:
    """Submit the training job (it trains, and scores challenger and champion on one holdout),
    wait for it, and read its decision record: JSON only, no model file is fetched or loaded
    here. Not retried: a failed training run is a result to look at, not a hiccup."""
    logger = get_run_logger()
    job_id = compute.submit(spec)
    logger.info("training job %s submitted (%s)", job_id, compute.status(job_id).url)
    status = compute.wait(job_id, timeout)
    if status.state is not JobState.COMPLETED:
        raise TrainingJobFailed(f"training job {job_id} {status.state.value}: {status.message}")
    return TrainedChallenger.of(compute, job_id, dest)


@task(name="judge-challenger", cache_policy=NONE)
def judge_challenger(
    record: DecisionRecord,
    gate: GateConfig,
    data_fingerprint: str,
    params_digest: str,
    champion_version: str | None,
) -> Decision:
    """Apply the promotion gate to the metrics the job recorded, after checking the record
    answers this run's question (its data, its parameters, its champion)."""
    record.check(
        data_fingerprint=data_fingerprint, params_digest=params_digest, champion=champion_version
    )
    return record.decide(gate)
