"""Running a flow from the CLI: through its deployment when the stack has one, else here.

Why through the deployment: its concurrency limit (prefect.yaml) then holds the CLI's run
too, so a ``mlops retrain`` never overlaps a run an event or the schedule started. Without
deployments nothing else can start one, so running the flow in this process is safe (and the
retraining flow holds its own lock anyway, tasks/locks.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import State
from pydantic import BaseModel, ValidationError

from core.interfaces import BlobRef, ConflictError
from core.lake import Lake
from training.chunks import file_sha256

R = TypeVar("R", bound=BaseModel)
logger = logging.getLogger("mlops")


def deployment_exists(name: str) -> bool:
    """Whether ``<flow>/<deployment>`` is published on the server this process talks to."""
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


def run_deployed(name: str, parameters: dict[str, Any]) -> State[Any]:
    """Start a run of deployment ``name`` and wait for its end; returns its final state."""
    flow_run = run_deployment(name=name, parameters=parameters, timeout=None)
    state = flow_run.state  # type: ignore[union-attr]
    if state is None:
        raise RuntimeError(f"the run of {name} has no state")
    return state


def typed_result(state: State[Any], kind: type[R]) -> R | None:
    """The run's typed result when it can be read here (a local run, or a deployed run whose
    result was persisted where this process can read it); else None: the state's message
    still says how it ended."""
    from flows.outcome import result_of

    try:
        return result_of(state, kind)
    except Exception:  # a deployed run's result is not stored anywhere we can read
        return None


def upload_once(lake: Lake, name: str, source: Path, container: str | None = None) -> BlobRef:
    """Upload a local file into landing (or ``container``), streamed, without overwriting a
    different file of that name still waiting there: on a conflict it lands as
    ``<stem>-<sha8><ext>`` (the same content under that name is the same upload: reused)."""
    container = container or lake.landing
    try:
        return lake.datalake.upload(container, name, source, if_none_match=True)
    except ConflictError:
        pass
    digest = file_sha256(source)[:8]
    stem, dot, ext = name.rpartition(".")
    unique = f"{stem}-{digest}.{ext}" if dot else f"{name}-{digest}"
    try:
        return lake.datalake.upload(container, unique, source, if_none_match=True)
    except ConflictError:
        if container == lake.landing:
            return lake.resolve(f"{lake.landing}/{unique}")
        return lake.datalake.ref(f"{container}/{unique}")


def run_flow(
    deployment: str, parameters: dict[str, Any], kind: type[R]
) -> tuple[State[Any], R | None]:
    """Run a flow through its deployment when it is published (its concurrency limit then
    holds this run too), else in this process; returns the final state and typed result."""
    if deployment_exists(deployment):
        logger.info("running deployment %s (waits its turn)", deployment)
        state = run_deployed(deployment, parameters)
    else:
        state = _flow(deployment)(**parameters, return_state=True)
    return state, typed_result(state, kind)


def _flow(deployment: str) -> Any:
    if deployment.startswith("batch-scoring/"):
        from flows.batch_scoring import batch_scoring

        return batch_scoring
    if deployment.startswith("retraining/"):
        from flows.retraining import retraining

        return retraining
    from flows.release import release

    return release


def one_line(exc: Exception) -> str:
    """An error as one line (a pydantic error: each field and its problem)."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
    return " ".join(str(exc).split())
