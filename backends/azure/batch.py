"""``BatchScoring`` on Azure Machine Learning: a pipeline job of one parallel step.

The step (``parallel_run_function``) runs ``training/batch_parallel.py`` (the same
``training.batch_score`` code as the local process) on the compute cluster, in the training
environment, over a folder input: one mini-batch per file. To score exactly one file, and
exactly the version seen, the input blob is first copied (server side, no bytes through this
worker) to ``<output folder>/input/<name>``; that folder is the step's input and the copy
stays as the record of what was scored. The registered model comes in as a ``custom_model``
input (``azureml:<name>:<version>``), the job checks its sha256, and writes
``predictions.<format>`` and then ``lineage.json`` into the output folder, bound to the lake
through the datastore ``MLOPS_AZURE__BATCH_DATASTORE`` (registered over the batch container).
"""

from __future__ import annotations

import json
import logging
import secrets
import shlex
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError

from backends.azure.compute import AmlCompute
from backends.azure.jobs import model_asset
from backends.local.batch import JobsOf, output_folder
from core.interfaces import (
    BackendError,
    BatchScoringSpec,
    DataLake,
    JobState,
    NotFoundError,
)
from training.batch import LINEAGE_FILE

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from core.settings import AzureSettings

log = logging.getLogger(__name__)

ENTRY_SCRIPT = "training/batch_parallel.py"
OUTPUT_NAME = "scored"


def program_arguments(spec: BatchScoringSpec, input_etag: str) -> str:
    """The entry script's arguments, with the model input and the output folder bound."""
    model = spec.model
    parts = ["--model ${{inputs.model}}", "--output ${{outputs.scored}}"]
    parts += [f"--model-name {shlex.quote(model.name)}"]
    parts += [f"--model-version {shlex.quote(model.version)}"]
    parts += [f"--model-sha256 {shlex.quote(model.sha256)}"]
    parts += [f"--format {spec.output_format}", f"--chunk-rows {int(spec.chunk_rows)}"]
    parts += [f"--input-uri {shlex.quote(spec.input_uri)}"]
    parts += [f"--input-etag {shlex.quote(input_etag)}" if input_etag else ""]
    parts += [f"--output-uri {shlex.quote(spec.output_uri)}"]
    return " ".join(p for p in parts if p)


class AmlBatchScoring(JobsOf):
    """Runs batch scoring as Azure ML parallel jobs (a pipeline of one parallel step).

    Args:
        ml_client: The workspace client.
        settings: Cluster, environment, datastore and poll interval.
        datalake: The lake (input snapshot, lineage read back).
        code_dir: The folder holding the ``training`` package (the code snapshot).
        container: The batch container, the one ``settings.batch_datastore`` binds.
        compute: Status, wait and logs of Azure ML jobs (default: an ``AmlCompute``).
    """

    _jobs: AmlCompute

    def __init__(
        self,
        ml_client: MLClient,
        settings: AzureSettings,
        datalake: DataLake,
        code_dir: Path,
        container: str = "batch",
        compute: AmlCompute | None = None,
    ) -> None:
        self.container = container
        self._client = ml_client
        self.settings = settings
        self.datalake = datalake
        self._jobs = compute or AmlCompute(ml_client, settings, code_dir)

    def submit(self, spec: BatchScoringSpec) -> str:
        """Snapshot the input beside the output, then create the parallel job.

        Raises:
            NotFoundError: The input blob does not exist.
            ValueError: The output URI names no folder, the format is unknown, or a
                value holds ``${{`` (Azure ML would read it as a binding).
            BackendError: Azure ML refused the job.
        """
        if spec.output_format not in ("parquet", "csv"):
            raise ValueError(f"unknown output format {spec.output_format!r}: parquet or csv")
        if "${{" in json.dumps([spec.input_uri, spec.output_uri, spec.model.name]):
            raise ValueError("batch scoring URIs and names must not contain '${{'")
        container, prefix = output_folder(self.datalake, spec.output_uri)
        if container != self.container:
            raise ValueError(
                f"outputs go to the batch container {self.container!r} (the datastore "
                f"{self.settings.batch_datastore!r} binds it), not {container!r}"
            )
        source = self.datalake.ref(spec.input_uri)
        listed = [r for r in self.datalake.list(source.container, source.name)]
        found = next((r for r in listed if r.name == source.name), None)
        if found is None:
            raise NotFoundError(f"no such blob: {source.container}/{source.name}")
        snapshot = prefix + "input/" + PurePosixPath(found.name).name
        copied = self.datalake.copy(found, container, snapshot)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        name = f"batch-{stamp}-{secrets.token_hex(3)}"
        folder = copied.uri.rsplit("/", 1)[0] + "/"
        created = self._create(name, spec, folder, found.etag, prefix)
        log.info("submitted Azure ML batch job %s (%s)", name, created.studio_url or "")
        return str(created.name or name)

    def collect(self, job_id: str) -> dict[str, Any]:
        """The lineage the job wrote beside its predictions (already in the lake)."""
        current = self.status(job_id)
        if current.state is not JobState.COMPLETED:
            raise BackendError(f"batch job {job_id} is {current.state.value}: {current.url}")
        job = self._client.jobs.get(job_id)
        output_uri = str((job.tags or {}).get("mlops.output_uri", ""))
        if not output_uri:
            raise BackendError(f"batch job {job_id} names no output folder (tag mlops.output_uri)")
        container, prefix = output_folder(self.datalake, output_uri)
        try:
            data, _ = self.datalake.get(container, prefix + LINEAGE_FILE)
        except NotFoundError as exc:
            raise BackendError(f"batch job {job_id} completed but wrote no {LINEAGE_FILE}") from exc
        lineage: dict[str, Any] = json.loads(data)
        file = lineage["output"]["file"]
        lineage["output"]["uri"] = self.datalake.uri(container, prefix + file)
        return lineage

    # ------------------------------------------------------------------ helpers
    def _create(
        self, name: str, spec: BatchScoringSpec, input_folder: str, etag: str, prefix: str
    ) -> Any:
        """Build the pipeline of one parallel step and create it (with its code snapshot)."""
        from azure.ai.ml import Input, Output
        from azure.ai.ml.entities import PipelineJob
        from azure.ai.ml.parallel import RunFunction, parallel_run_function

        settings = self.settings
        with self._jobs._code_snapshot() as code:  # the training package only
            step = parallel_run_function(
                name="batch_score",
                display_name="batch score",
                inputs={
                    "data": Input(type="uri_folder", mode="download"),
                    "model": Input(type="custom_model"),
                },
                outputs={OUTPUT_NAME: Output(type="uri_folder", mode="rw_mount")},
                input_data="${{inputs.data}}",
                instance_count=settings.instance_count,
                max_concurrency_per_instance=1,
                mini_batch_size="1",  # one file per mini-batch
                mini_batch_error_threshold=0,  # any failed file fails the job
                error_threshold=0,
                # A dict: the SDK's annotation says BatchRetrySettings, its validator refuses it.
                retry_settings={"max_retries": 2, "timeout": 3600},  # type: ignore[arg-type]
                task=RunFunction(
                    code=str(code),
                    entry_script=ENTRY_SCRIPT,
                    environment=self._jobs._environment(),
                    program_arguments=program_arguments(spec, etag),
                ),
            )

            node = step(
                data=Input(type="uri_folder", path=input_folder, mode="download"),
                model=Input(type="custom_model", path=model_asset(spec.model)),
            )
            node.outputs[OUTPUT_NAME] = Output(
                type="uri_folder",
                mode="rw_mount",
                path=f"azureml://datastores/{settings.batch_datastore}/paths/{prefix}",
            )
            job = PipelineJob(
                name=name,
                display_name=spec.display_name or name,
                experiment_name="batch-scoring",
                jobs={"batch_score": node},
                compute=settings.compute_name,
            )
            job.tags = {"mlops.output_uri": spec.output_uri, "mlops.model": spec.model.version}
            from azure.ai.ml.exceptions import MlException

            try:
                return self._client.jobs.create_or_update(job)
            except (AzureError, MlException) as exc:  # MlException: the code upload failed
                raise BackendError(f"Azure ML refused batch job {name}: {exc}") from exc
