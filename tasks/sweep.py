"""The sweep task: trials as parallel training jobs on the compute backend, the best one kept."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from core.interfaces import Compute, JobState, TrainingJobSpec
from tasks.training import TrainedChallenger, TrainingJobFailed
from training.decision import read_record
from training.params import MetricName, TrainingParams
from training.sweep import SweepConfig, best_trial


def _run_trial(compute: Compute, spec: TrainingJobSpec, timeout: float, dest: Path) -> Any:
    """One trial to its end: a TrainedChallenger, or the error message of a failed one."""
    try:
        job_id = compute.submit(spec)
        status = compute.wait(job_id, timeout)
        if status.state is not JobState.COMPLETED:
            return f"job {job_id} {status.state.value}: {status.message[-300:]}"
        record = read_record(compute.fetch_record(job_id, dest))
        return TrainedChallenger(job_id, compute.output_uri(job_id), record)
    except Exception as exc:  # one broken trial must not sink the others
        return f"{type(exc).__name__}: {exc}"


@task(name="sweep-on-compute", cache_policy=NONE)
def sweep_on_compute(
    compute: Compute,
    spec: TrainingJobSpec,
    base: TrainingParams,
    sweep: SweepConfig,
    metric: MetricName,
    timeout: float,
    dest: Path,
) -> TrainedChallenger:
    """Run the sweep's trials, at most ``sweep.max_parallel`` at once, each a training job
    with ``spec`` and the trial's parameters; publish a table of the trials and return the
    best one (by the gate's primary metric), which becomes the challenger.

    Raises:
        TrainingJobFailed: Every trial failed (the message carries each one's reason).
    """
    logger = get_run_logger()
    trials = sweep.trials(base)
    specs = [
        replace(spec, params=p.model_dump(mode="json"), display_name=f"{spec.display_name} #{i}")
        for i, p in enumerate(trials, start=1)
    ]
    with ThreadPoolExecutor(max_workers=sweep.max_parallel, thread_name_prefix="trial") as pool:
        outcomes = list(pool.map(lambda s: _run_trial(compute, s, timeout, dest), specs))
    done = [o for o in outcomes if isinstance(o, TrainedChallenger)]
    if not done:
        raise TrainingJobFailed(f"all {len(trials)} sweep trials failed: {outcomes}")
    best = done[best_trial([o.record for o in done], metric)]
    rows = []
    for number, (params, outcome) in enumerate(zip(trials, outcomes, strict=True), start=1):
        row: dict[str, Any] = {
            "trial": number,
            "hyperparameters": json.dumps(params.hyperparameters, sort_keys=True),
        }
        if isinstance(outcome, TrainedChallenger):
            scores = outcome.record.challenger
            row |= {"job": outcome.job_id, "rmse": round(scores.rmse, 4), "r2": round(scores.r2, 4)}
            row["best"] = "yes" if outcome is best else ""
        else:
            row |= {"job": "", "rmse": None, "r2": None, "best": f"failed: {outcome[:200]}"}
        rows.append(row)
    create_table_artifact(
        key="sweep-trials",
        table=rows,
        description=f"{len(done)} of {len(trials)} trials completed; best by {metric}: "
        f"job {best.job_id} ({best.record.params['hyperparameters']})",
    )
    logger.info("sweep: best of %d trials is %s", len(done), best.job_id)
    return best
