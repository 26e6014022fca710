"""AmlBatchScoring against a fake workspace: the pipeline job of one parallel step the real SDK
sends, checked against the jobs REST shape (azure-rest-api-specs, PipelineJob), and the
lineage read back from the lake."""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from backends.azure.batch import AmlBatchScoring
from backends.local.memory import InMemoryDataLake
from core.interfaces import (
    BackendError,
    BatchScoring,
    BatchScoringSpec,
    BlobRef,
    JobState,
    ModelInput,
    NotFoundError,
)
from core.settings import AzureSettings
from tests.utils.azure_ml_workspace import serve_submit

ACCOUNT = "https://lake.blob.core.windows.net"
SHA = "ab" * 32


class HttpsLake(InMemoryDataLake):
    """The in-memory lake with the storage account's URLs (what Azure ML reads)."""

    def uri(self, container: str, name: str) -> str:
        return f"{ACCOUNT}/{quote(container)}/{quote(name, safe='/~')}"

    def ref(self, uri: str) -> BlobRef:
        if uri.startswith(ACCOUNT + "/"):
            uri = unquote(urlsplit(uri).path.lstrip("/"))
        return super().ref(uri)


@pytest.fixture
def lake() -> HttpsLake:
    lake = HttpsLake()
    lake.ensure_containers("batch")
    lake.put("batch", "incoming/visits.csv", b"age,sex\n1,2\n")
    return lake


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "training").mkdir(parents=True)
    for name in ("__init__.py", "train.py", "batch_score.py", "batch_parallel.py"):
        (root / "training" / name).write_text("")
    return root


@pytest.fixture
def batch(aml: Any, lake: HttpsLake, code_dir: Path) -> AmlBatchScoring:
    settings = AzureSettings(
        subscription_id="sub",
        resource_group="rg",
        workspace="ws",
        environment="azureml:diabetes-train-env@latest",
        compute_name="cpu-cluster",
        batch_datastore="lakebatch",
    )
    return AmlBatchScoring(aml.client, settings, lake, code_dir, container="batch")


def spec(lake: HttpsLake, **overrides: Any) -> BatchScoringSpec:
    fields: dict[str, Any] = {
        "input_uri": lake.uri("batch", "incoming/visits.csv"),
        "output_uri": lake.uri("batch", "incoming/visits.predictions/"),
        "model": ModelInput("diabetes-ridge", "4", "file:///unused", SHA),
        "chunk_rows": 50_000,
    }
    return BatchScoringSpec(**{**fields, **overrides})


def test_is_a_batch_scoring(batch: AmlBatchScoring) -> None:
    assert isinstance(batch, BatchScoring)


def serve_pipeline_submit(aml: Any) -> list[dict[str, Any]]:
    """What a pipeline submit asks beyond a command job's: the cluster (pipeline validation
    reads it), in the Compute resource shape of the REST specification."""
    serve_submit(aml)
    cluster = {
        "id": f"{aml.arm}/computes/cpu-cluster",
        "name": "cpu-cluster",
        "type": "Microsoft.MachineLearningServices/workspaces/computes",
        "location": "westeurope",
        "properties": {
            "computeType": "AmlCompute",
            "provisioningState": "Succeeded",
            "properties": {
                "vmSize": "STANDARD_DS3_V2",
                "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0},
            },
        },
    }
    aml.transport.route("GET", r"/computes/cpu-cluster\?", cluster)
    workspace = {"id": aml.arm, "name": "ws-mlops", "location": "westeurope", "properties": {}}
    aml.transport.route("GET", r"/workspaces/ws-mlops\?", workspace)

    def put_component(request: Any) -> dict[str, Any]:
        # ComponentVersion: the resource echoed with its id (the step's anonymous component).
        path = request.url.split("management.azure.com")[1].split("?")[0]
        components.append(request.json())
        return {"id": path, "name": path.rsplit("/", 1)[1], **request.json()}

    components: list[dict[str, Any]] = []
    aml.transport.route("PUT", r"/components/[^/]+/versions/[^/?]+\?", put_component)
    return components


@pytest.fixture
def jwt_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline submit reads claims of the caller's token (unverified): give it a JWT."""
    from azure.core.credentials import AccessToken

    from tests.utils.azure_http import FakeCredential

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    token = ".".join(
        [
            part({"alg": "none", "typ": "JWT"}),
            part({"aud": "https://ml.azure.com", "oid": "o", "tid": "t", "exp": 4102444800}),
            "c2ln",
        ]
    )
    monkeypatch.setattr(
        FakeCredential, "get_token", lambda self, *s, **k: AccessToken(token, 4102444800)
    )


@pytest.mark.usefixtures("jwt_token")
def test_submit_sends_a_pipeline_of_one_parallel_step(
    aml: Any, batch: AmlBatchScoring, lake: HttpsLake
) -> None:
    serve_pipeline_submit(aml)
    job_id = batch.submit(spec(lake))

    puts = [r for r in aml.transport.requests if r.method == "PUT" and "/jobs/" in r.url]
    assert len(puts) == 1 and job_id in puts[0].url
    props = puts[0].json()["properties"]
    assert props["jobType"] == "Pipeline" and props["experimentName"] == "batch-scoring"
    assert props["computeId"].endswith("/computes/cpu-cluster")
    assert props["tags"]["mlops.output_uri"] == spec(lake).output_uri
    (step,) = props["jobs"].values()
    assert step["type"] == "parallel" and step["input_data"] == "${{inputs.data}}"
    assert step["mini_batch_size"] == 1  # one file per mini-batch
    assert step["error_threshold"] == 0 and step["mini_batch_error_threshold"] == 0
    task = step["task"]
    assert task["type"] == "run_function" and task["entry_script"] == "training/batch_parallel.py"
    assert task["environment"].endswith("/environments/diabetes-train-env/versions/7")
    args = shlex.split(task["program_arguments"])
    assert args[args.index("--model") + 1] == "${{inputs.model}}"
    assert args[args.index("--output") + 1] == "${{outputs.scored}}"
    assert args[args.index("--model-sha256") + 1] == SHA
    assert args[args.index("--input-etag") + 1] == lake.list("batch", "incoming/visits.csv")[0].etag
    # The input is a snapshot folder holding only this file, copied beside the outputs.
    snapshot = "incoming/visits.predictions/input/visits.csv"
    assert lake.get("batch", snapshot)[0] == lake.get("batch", "incoming/visits.csv")[0]
    assert step["inputs"]["data"] == {
        "uri": lake.uri("batch", "incoming/visits.predictions/input/"),
        "mode": "Download",
        "job_input_type": "uri_folder",
    }
    assert step["inputs"]["model"]["uri"].endswith("/models/diabetes-ridge/versions/4")
    assert step["outputs"]["scored"] == {
        "uri": "azureml://datastores/lakebatch/paths/incoming/visits.predictions/",
        "mode": "ReadWriteMount",
        "job_output_type": "uri_folder",
    }
    # The code snapshot is the training package, uploaded once as for training jobs.
    assert any("/codes/" in r.url and r.method == "PUT" for r in aml.transport.requests)


def test_outputs_outside_the_batch_container_and_missing_inputs_are_refused(
    aml: Any, batch: AmlBatchScoring, lake: HttpsLake
) -> None:
    lake.ensure_containers("curated")
    with pytest.raises(ValueError, match="batch container 'batch'"):
        batch.submit(spec(lake, output_uri=lake.uri("curated", "out/")))
    with pytest.raises(NotFoundError):
        batch.submit(spec(lake, input_uri=lake.uri("batch", "nope.csv")))
    assert aml.transport.requests == []


def pipeline_json(aml: Any, name: str, status: str, output_uri: str) -> dict[str, Any]:
    """A pipeline job as the jobs API returns it (JobBase with PipelineJob properties)."""
    return {
        "id": f"{aml.arm}/jobs/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            "jobType": "Pipeline",
            "status": status,
            "experimentName": "batch-scoring",
            "computeId": f"{aml.arm}/computes/cpu-cluster",
            "tags": {"mlops.output_uri": output_uri},
            "jobs": {},
            "inputs": {},
            "outputs": {},
            "settings": {},
            "services": {
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": f"https://ml.azure.com/runs/{name}",
                }
            },
        },
    }


def test_collect_reads_the_lineage_the_job_wrote_into_the_lake(
    aml: Any, batch: AmlBatchScoring, lake: HttpsLake
) -> None:
    out = spec(lake).output_uri
    aml.transport.route("GET", r"/jobs/batch-1\?", pipeline_json(aml, "batch-1", "Completed", out))
    aml.transport.route("GET", r"/jobs/batch-2\?", pipeline_json(aml, "batch-2", "Running", out))
    lineage = {"input": {"rows": 3}, "output": {"file": "predictions.parquet"}}
    lake.put("batch", "incoming/visits.predictions/lineage.json", json.dumps(lineage).encode())

    assert batch.status("batch-2").state is JobState.RUNNING
    with pytest.raises(BackendError, match="running"):
        batch.collect("batch-2")
    collected = batch.collect("batch-1")

    assert collected["input"] == {"rows": 3}
    assert collected["output"]["uri"] == lake.uri(
        "batch", "incoming/visits.predictions/predictions.parquet"
    )


def test_the_azure_profile_builds_it_without_contacting_azure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import azure.identity

    from backends import get_backends, get_batch_scoring
    from core.settings import Settings

    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("building the backend must not ask for a token")

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)
    azure_settings = AzureSettings(
        subscription_id="s", resource_group="r", workspace="w", storage_account_url=ACCOUNT
    )
    settings = Settings(profile="azure", azure=azure_settings, batch_container="scoring")
    backends = get_backends(settings)

    batch = get_batch_scoring(settings, backends)

    assert isinstance(batch, AmlBatchScoring) and batch.container == "scoring"
    assert batch.datalake is backends.datalake
