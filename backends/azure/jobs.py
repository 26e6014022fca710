"""The pieces of an Azure ML training job that a single job (``backends.azure.compute``) and a
sweep's trial (``backends.azure.sweep``) share: names, inputs, outputs, the command line, and
the reading of job statuses."""

from __future__ import annotations

import json
import secrets
import shlex
from datetime import UTC, datetime
from typing import Any

from core.interfaces import JobState, ModelInput, TrainingJobSpec

OUTPUT_NAME = "model"
DECISION_OUTPUT = "decision"
CHAMPION_INPUT = "champion"
# Data must already be in cloud storage: a local path would make the SDK upload it as a
# new data asset on every run.
_REMOTE_SCHEMES = ("https://", "azureml:", "wasbs://", "abfss://")

# Azure ML job statuses (azure.ai.ml.operations._run_history_constants.JobStatus).
# The SDK counts NotResponding and Paused as terminal, but a job in them can still resume
# and cost money: they stay unfinished here, and wait()'s timeout cancels them.
_STATES = {
    "NotStarted": JobState.QUEUED,
    "Queued": JobState.QUEUED,
    "Provisioning": JobState.QUEUED,
    "Preparing": JobState.QUEUED,
    "Starting": JobState.QUEUED,
    "Paused": JobState.QUEUED,
    "Running": JobState.RUNNING,
    "Finalizing": JobState.RUNNING,
    "CancelRequested": JobState.RUNNING,
    "NotResponding": JobState.RUNNING,
    "Completed": JobState.COMPLETED,
    "Failed": JobState.FAILED,
    "Canceled": JobState.CANCELED,
}


_BY_KEY = {name.lower(): state for name, state in _STATES.items()}


def map_status(aml_status: object) -> JobState:
    """The ``JobState`` of an Azure ML job status (unknown ones count as still running)."""
    return _BY_KEY.get(status_text(aml_status).lower(), JobState.RUNNING)


def status_text(aml_status: object) -> str:
    """The service's spelling of a status (the SDK hands out str enums or plain strings)."""
    return str(getattr(aml_status, "value", aml_status) or "Unknown")


def job_name(kind: str) -> str:
    """A new job name: ``<kind>-<UTC stamp>-<6 hex digits>``."""
    return f"{kind}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


def checked_params(spec: TrainingJobSpec) -> str:
    """The job's parameters as JSON, once its data is known to be in cloud storage.

    Raises:
        ValueError: ``spec.data_uri`` is local, or the parameters contain ``${{`` (Azure ML
            would read it as a binding).
    """
    if not spec.data_uri.startswith(_REMOTE_SCHEMES):
        raise ValueError(f"Azure ML reads data from cloud storage, not {spec.data_uri!r}")
    params = json.dumps(spec.params, sort_keys=True)
    if "${{" in params:
        raise ValueError("training parameters must not contain '${{'")
    return params


def job_inputs(spec: TrainingJobSpec) -> dict[str, Any]:
    """The ``data`` input, and the ``champion`` model input when there is one."""
    from azure.ai.ml import Input

    inputs: dict[str, Any] = {"data": Input(type="uri_file", path=spec.data_uri)}
    if spec.champion is not None:
        inputs[CHAMPION_INPUT] = Input(type="custom_model", path=model_asset(spec.champion))
    return inputs


def job_outputs() -> dict[str, Any]:
    """The ``model`` and ``decision`` folders."""
    from azure.ai.ml import Output

    return {name: Output(type="uri_folder") for name in (OUTPUT_NAME, DECISION_OUTPUT)}


def model_asset(model: ModelInput) -> str:
    """The job input path of a registered model: ``azureml:<name>:<version>``."""
    return f"azureml:{model.name}:{model.version}"


def training_command(params: str, champion: ModelInput | None) -> str:
    """``python -m training.train`` with the job's inputs and outputs bound."""
    parts = [
        "python -m training.train --data ${{inputs.data}}",
        f"--output ${{{{outputs.{OUTPUT_NAME}}}}}",
        f"--params {shlex.quote(params)}",
        f"--decision ${{{{outputs.{DECISION_OUTPUT}}}}}",
    ]
    if champion is not None:
        parts += [
            f"--champion ${{{{inputs.{CHAMPION_INPUT}}}}}",
            f"--champion-version {shlex.quote(champion.version)}",
            f"--champion-sha256 {shlex.quote(champion.sha256)}",
        ]
    return " ".join(parts)
