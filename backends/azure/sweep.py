"""A hyperparameter sweep as one Azure ML sweep job on the compute cluster.

The trial is the training command job ``AmlCompute.submit`` sends (same code snapshot, same
environment from the lock, same ``data``/``champion`` inputs and ``model``/``decision``
outputs), with each swept hyperparameter as an input handed to ``training.train`` by
``--hyperparameter NAME=${{inputs.NAME}}``; ``.sweep()`` replaces those inputs by ``Choice``
search spaces (the SDK rewrites the bindings to ``${{search_space.NAME}}``). Our grid is a
grid: ``sampling_algorithm="grid"``. Each trial runs with ``--mlflow``, so it logs the metric
the sweep's objective names, and the service records the best trial as the sweep job's
``best_child_run_id`` property. Its ``decision.json`` is fetched like any training job's: the
worker reads JSON only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.azure.client import call
from backends.azure.jobs import (
    CHAMPION_INPUT,
    checked_params,
    job_inputs,
    job_name,
    job_outputs,
    map_status,
    status_text,
    training_command,
)
from core.interfaces import BackendError, JobState, JobStatus, ModelInput, SweepRun, SweepSpec

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from core.settings import AzureSettings

log = logging.getLogger(__name__)

# azure.ai.ml.constants._common.SWEEP_JOB_BEST_CHILD_RUN_ID_PROPERTY_NAME: the property the
# service sets on a finished sweep job (the SDK's jobs.download follows it too).
BEST_CHILD = "best_child_run_id"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A choice is pasted into the trial's command line: plain words and numbers only.
_TEXT = re.compile(r"[A-Za-z0-9_.+-]+")


def check_space(space: dict[str, list[object]]) -> None:
    """Refuse a grid the sweep job cannot carry to the command line intact.

    Raises:
        ValueError: A name is not an identifier or is taken by a job input, or a value is not
            a number, boolean or plain word.
    """
    for name, values in space.items():
        if not _NAME.fullmatch(name) or name in ("data", CHAMPION_INPUT):
            raise ValueError(f"cannot sweep {name!r} in Azure ML: not a free input name")
        for value in values:
            plain = isinstance(value, bool | int | float) or (
                isinstance(value, str) and _TEXT.fullmatch(value)
            )
            if not plain:
                raise ValueError(f"cannot sweep {name}={value!r} in Azure ML: not a plain value")


def sweep_command(params: str, champion: ModelInput | None, names: list[str]) -> str:
    """The trial's command: the training command, MLflow on, the swept inputs as overrides."""
    overrides = "".join(f" --hyperparameter {n}=${{{{inputs.{n}}}}}" for n in names)
    return f"{training_command(params, champion)} --mlflow{overrides}"


def run_sweep(
    client: MLClient,
    settings: AzureSettings,
    spec: SweepSpec,
    timeout: float,
    *,
    code: Callable[[], AbstractContextManager[Path]],
    environment: Callable[[], str],
    wait: Callable[[str, float], JobStatus],
    status: Callable[[str], JobStatus],
) -> SweepRun:
    """Submit the sweep job, wait for it (canceled after ``timeout``), return its trials.

    ``code``, ``environment``, ``wait`` and ``status`` are ``AmlCompute``'s: the code
    snapshot, the environment from the lock, and the polling of a job.

    Raises:
        ValueError: The data is local, or the grid cannot be swept (``check_space``).
        BackendError: Azure ML refused the job, the sweep did not complete, or it named no
            best trial.
    """
    params = checked_params(spec.job)
    check_space(spec.space)
    from azure.ai.ml import command
    from azure.ai.ml.sweep import Choice

    name = job_name("sweep")
    names = sorted(spec.space)
    # Each swept input starts with a default; .sweep() replaces it by its search space.
    inputs: dict[str, Any] = job_inputs(spec.job) | {n: spec.space[n][0] for n in names}
    with code() as snapshot:
        trial = command(
            code=str(snapshot),
            command=sweep_command(params, spec.job.champion, names),
            inputs=inputs,
            outputs=job_outputs(),
            environment=environment(),
            compute=settings.compute_name,
            instance_count=settings.instance_count,
        )
        searched = trial(**{n: Choice(values=list[Any](spec.space[n])) for n in names})
        job = searched.sweep(
            compute=settings.compute_name,
            sampling_algorithm="grid",
            primary_metric=spec.metric,
            goal=spec.goal,
            max_total_trials=spec.max_trials,
            max_concurrent_trials=spec.max_parallel,
        )
        job.set_limits(timeout=max(1, int(timeout)))
        job.name = name
        job.experiment_name = spec.job.experiment
        job.display_name = spec.job.display_name or name
        job.tags = dict(spec.job.tags)
        created = call(f"submit sweep job {name}", lambda: client.jobs.create_or_update(job))
    log.info("submitted Azure ML sweep job %s (%s)", name, created.studio_url or "")
    final = wait(name, timeout)
    if final.state is not JobState.COMPLETED:
        raise BackendError(f"sweep job {name} {final.state.value}: {final.message} {final.url}")
    done = call(f"read sweep job {name}", lambda: client.jobs.get(name))
    best = (done.properties or {}).get(BEST_CHILD)
    if not best:
        raise BackendError(f"sweep job {name} completed but named no best trial: {final.url}")
    children = call(
        f"list the trials of sweep job {name}",
        lambda: list(client.jobs.list(parent_job_name=name)),
    )
    trials = {
        str(child.name): JobStatus(
            job_id=str(child.name),
            state=map_status(child.status),
            message=f"Azure ML status {status_text(child.status)}",
        )
        for child in children
    }
    if best not in trials:
        trials[best] = status(best)
    return SweepRun(sweep_id=name, best=str(best), trials=trials, url=final.url)
