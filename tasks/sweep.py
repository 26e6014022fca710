"""The sweep task: trials as parallel training jobs on the compute backend, the best one kept
(as one sweep job where the backend has a sweep service: Azure ML)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from core.interfaces import (
    BackendError,
    Compute,
    JobState,
    SweepCompute,
    SweepSpec,
    TrainingJobSpec,
)
from tasks.training import TrainedChallenger, TrainingJobFailed
from training.evaluate import LOWER_IS_BETTER
from training.params import MetricName, TrainingParams
from training.sweep import SweepConfig, best_trial


def _run_trial(compute: Compute, spec: TrainingJobSpec, timeout: float, dest: Path) -> Any:
    """One trial to its end: a TrainedChallenger, or the error message of a failed one."""
    try:
        job_id = compute.submit(spec)
        status = compute.wait(job_id, timeout)
        if status.state is not JobState.COMPLETED:
            return f"job {job_id} {status.state.value}: {status.message[-300:]}"
        return TrainedChallenger.of(compute, job_id, dest)
    except Exception as exc:  # one broken trial must not sink the others
        return f"{type(exc).__name__}: {exc}"


Outcome = tuple[dict[str, Any] | None, TrainedChallenger | str]  # (hyperparameters, result)


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

    A backend with a sweep service (``SweepCompute``: Azure ML) runs the trials as one sweep
    job and names the best itself; any other runs them as separate jobs from here.

    Raises:
        TrainingJobFailed: The sweep job failed, or every trial did (with each one's reason).
    """
    logger = get_run_logger()
    trials = sweep.trials(base)  # refuses a bad grid before anything is submitted
    if isinstance(compute, SweepCompute):
        outcomes, best = _as_one_sweep_job(compute, spec, base, sweep, metric, timeout, dest)
    else:
        outcomes, best = _as_separate_jobs(compute, spec, trials, sweep, metric, timeout, dest)
    done = sum(isinstance(o, TrainedChallenger) for _, o in outcomes)
    create_table_artifact(
        key="sweep-trials",
        table=_table(outcomes, best),
        description=f"{done} of {len(outcomes)} trials completed; best by {metric}: "
        f"job {best.job_id} ({best.record.params['hyperparameters']})",
    )
    logger.info("sweep: best of %d trials is %s", done, best.job_id)
    return best


def _as_separate_jobs(
    compute: Compute,
    spec: TrainingJobSpec,
    trials: list[TrainingParams],
    sweep: SweepConfig,
    metric: MetricName,
    timeout: float,
    dest: Path,
) -> tuple[list[Outcome], TrainedChallenger]:
    specs = [
        replace(spec, params=p.model_dump(mode="json"), display_name=f"{spec.display_name} #{i}")
        for i, p in enumerate(trials, start=1)
    ]
    with ThreadPoolExecutor(max_workers=sweep.max_parallel, thread_name_prefix="trial") as pool:
        results = list(pool.map(lambda s: _run_trial(compute, s, timeout, dest), specs))
    done = [o for o in results if isinstance(o, TrainedChallenger)]
    if not done:
        raise TrainingJobFailed(f"all {len(trials)} sweep trials failed: {results}")
    best = done[best_trial([o.record for o in done], metric)]
    return [(p.hyperparameters, o) for p, o in zip(trials, results, strict=True)], best


def _as_one_sweep_job(
    compute: SweepCompute,
    spec: TrainingJobSpec,
    base: TrainingParams,
    sweep: SweepConfig,
    metric: MetricName,
    timeout: float,
    dest: Path,
) -> tuple[list[Outcome], TrainedChallenger]:
    goal: Literal["minimize", "maximize"] = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    request = SweepSpec(
        job=replace(spec, params=base.model_dump(mode="json")),
        space=dict(sweep.space),
        max_trials=sweep.max_trials,
        max_parallel=sweep.max_parallel,
        metric=metric,
        goal=goal,
    )
    try:
        run = compute.sweep(request, timeout)
    except BackendError as exc:
        raise TrainingJobFailed(str(exc)) from exc
    outcomes: list[Outcome] = []
    for job_id, status in sorted(run.trials.items()):
        if status.state is not JobState.COMPLETED:
            outcomes.append((None, f"job {job_id} {status.state.value}: {status.message}"))
            continue
        try:  # the trial's decision record only: JSON, never a model file
            trained = TrainedChallenger.of(compute, job_id, dest)
        except Exception as exc:
            outcomes.append((None, f"job {job_id}: no decision record: {exc}"))
            continue
        outcomes.append((dict(trained.record.params["hyperparameters"]), trained))
    chosen = [o for _, o in outcomes if isinstance(o, TrainedChallenger) and o.job_id == run.best]
    if not chosen:
        raise TrainingJobFailed(
            f"sweep job {run.sweep_id} chose trial {run.best}, whose record is missing: "
            f"{[o for _, o in outcomes if isinstance(o, str)]} {run.url}"
        )
    return outcomes, chosen[0]


def _table(outcomes: list[Outcome], best: TrainedChallenger) -> list[dict[str, Any]]:
    rows = []
    for number, (hyperparameters, outcome) in enumerate(outcomes, start=1):
        row: dict[str, Any] = {
            "trial": number,
            "hyperparameters": ""
            if hyperparameters is None
            else json.dumps(hyperparameters, sort_keys=True),
        }
        if isinstance(outcome, TrainedChallenger):
            scores = outcome.record.challenger
            row |= {"job": outcome.job_id, "rmse": round(scores.rmse, 4), "r2": round(scores.r2, 4)}
            row["best"] = "yes" if outcome is best else ""
        else:
            row |= {"job": "", "rmse": None, "r2": None, "best": f"failed: {outcome[:200]}"}
        rows.append(row)
    return rows
