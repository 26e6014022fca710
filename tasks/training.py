"""Tasks that train on the compute backend and judge the challenger against the champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from core.interfaces import Compute, JobState, TrainingJobSpec
from training import evaluate, model
from training.artifacts import MODEL_FILE
from training.params import GateConfig


class TrainingJobFailed(RuntimeError):
    """The compute backend ran the job and it failed; the message carries the job's log tail."""


@task(name="train-on-compute", cache_policy=NONE)
def train_on_compute(
    compute: Compute, spec: TrainingJobSpec, timeout: float, dest: Path
) -> tuple[str, Path]:
    """Submit the training command, wait for it, and fetch its outputs. Not retried: a failed
    training run is a result to look at, not a hiccup."""
    logger = get_run_logger()
    job_id = compute.submit(spec)
    logger.info("training job %s submitted (%s)", job_id, compute.status(job_id).url)
    status = compute.wait(job_id, timeout)
    if status.state is not JobState.COMPLETED:
        raise TrainingJobFailed(f"training job {job_id} {status.state.value}: {status.message}")
    return job_id, compute.download_outputs(job_id, dest)


@task(name="evaluate-challenger", cache_policy=NONE)
def evaluate_challenger(
    challenger_dir: Path,
    champion_dir: Path | None,
    champion_version: str | None,
    holdout: pd.DataFrame,
    gate: GateConfig,
) -> evaluate.Decision:
    """Score challenger and champion on the same holdout and apply the promotion gate."""
    challenger = evaluate.score(model.load(challenger_dir / MODEL_FILE), holdout)
    champion = (
        evaluate.score(model.load(champion_dir / MODEL_FILE), holdout)
        if champion_dir is not None
        else None
    )
    return evaluate.decide(challenger, champion, gate, champion_version=champion_version)
