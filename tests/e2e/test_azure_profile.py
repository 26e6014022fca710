"""The whole loop with ``MLOPS_PROFILE=azure``, against the Azure fakes (issue 10's "done when").

Blob created (Event Grid's documented shape) -> the relay -> the retraining trigger -> retraining
on the Azure ML cluster, evaluation inside the job -> registration in the workspace registry ->
``mlops.model.registered`` -> the release trigger -> QA on ACI (private) -> production on the
online endpoint, reached through the scoring route only -> autoscale on the deployment.

Real: the typed settings of the azure profile (environment variables), and the adapters
``get_backends`` / ``get_release_backends`` choose from them; ``mlops deploy``'s publishing
(``core.deploy.publish``, the real ``prefect deploy`` of prefect.yaml) to the prefect-azure ACI
pool, its push step writing the code to Blob Storage (Azurite) and its pull step reading it
back; the relay Function's code posting the events; a real Prefect server (every service on)
whose triggers, the ones prefect.yaml declares, create the flow runs; the flows, run in this
process as those very flow runs (``run_flow``), as a worker would run them; the Azure SDKs
(``MLClient``, the container-instance client) and the adapters' code; the training entrypoint,
which the fake cluster runs as the job (its decision record is what the worker reads); the
scoring app behind the router stand-in and QA's private network, over loopback sockets.

Fakes: Azure's REST APIs (recorded transports answering documented shapes:
tests/utils/azure_ml_workspace.py, aml_jobs.py, azure_ml_endpoints.py, azure_aci.py); the blob
transfers the Azure ML SDK makes outside its transport; the sign-in (``DefaultAzureCredential``
gives a fake token); the data lake, the in-memory one of the data lake contract tests at the
storage account's URL (a ``BlobDataLake`` there would reach the real account); the image build
(named by digest, ``DigestImageBuilder``: no Docker build, no registry push; an ACI run
has no engine to build on, see the README); Key Vault (the release's keys).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments.steps.core import run_steps
from prefect.flow_engine import run_flow
from prefect.states import State
from pydantic import SecretStr

import backends.azure.client
import backends.local.memory
from backends import get_backends, get_release_backends
from backends.azure.aci import AciTarget
from backends.azure.acr_task import AcrTaskImageBuilder
from backends.azure.aks import AksOnlineTarget, Autoscale
from backends.azure.code_storage import save_code_storage
from backends.azure.compute import AmlCompute
from backends.azure.registry import AmlModelRegistry
from backends.local.memory import InMemoryDataLake
from core.deploy import publish
from core.results import ReleaseReport, RetrainingSummary
from core.settings import Settings, get_settings
from core.version import REPO_ROOT
from flows.outcome import result_of
from flows.release import release
from flows.retraining import retraining
from tests.utils.aml_jobs import TrainingJobs
from tests.utils.azure_http import RG, SUB, WS, FakeCredential
from tests.utils.azure_ml_workspace import FakeWorkspace, fake_workspace
from tests.utils.azure_release import SUBNET, azure_release
from tests.utils.relay import blob_created, declared_deployments, relay_modules, runs_of

pytestmark = pytest.mark.e2e
relay, _ = relay_modules()
T = TypeVar("T")

ACCOUNT = "https://mlopsdata.blob.core.windows.net"  # the relay's sample events name it
DATA = Path(__file__).resolve().parents[1] / "data" / "good" / "diabetes_batch_a.csv"
IDENTITY = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/"
ENDPOINT = "diabetes-scoring-production"
AZURE = {
    "SUBSCRIPTION_ID": SUB,
    "RESOURCE_GROUP": RG,
    "WORKSPACE": WS,
    "STORAGE_ACCOUNT_URL": ACCOUNT,
    "ENVIRONMENT": "azureml:diabetes-train-env@latest",
    "REGISTRY": "crmlops.azurecr.io",
    "LOCATION": "westeurope",
    "KEY_VAULT_URL": "https://kvmlops.vault.azure.net/",
    "KUBERNETES_COMPUTE": "aks-prod",
    "QA_SUBNET_ID": SUBNET,
    # Flow runs join the same network in their own delegated subnet (they smoke-test QA).
    "FLOW_SUBNET_ID": SUBNET.removesuffix("/qa") + "/flows",
    "QA_IDENTITY": IDENTITY + "userAssignedIdentities/id-mlops-qa",
    "ENDPOINT_IDENTITY": IDENTITY + "userAssignedIdentities/id-mlops-endpoint",
    "WORKER_IDENTITY": IDENTITY + "userAssignedIdentities/id-mlops-worker",
    "WORKER_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "FLOW_IMAGE": "crmlops.azurecr.io/mlops-flows@sha256:" + "ab" * 32,
    "AUTOSCALE_MIN_INSTANCES": "2",
    "AUTOSCALE_MAX_INSTANCES": "6",
    "AUTOSCALE_TARGET_UTILIZATION": "60",
    "AUTOSCALE_POLLING_SECONDS": "15",
}


@pytest.fixture
def settings(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """``MLOPS_PROFILE=azure`` and its ``MLOPS_AZURE__*`` variables, read by ``get_settings``
    as a deployed run reads them; a landing container of its own on the shared server."""
    where = urlsplit(prefect_server)
    env = {
        "MLOPS_PROFILE": "azure",
        "MLOPS_WORK_POOL": "mlops-aci",
        "MLOPS_STATE_DIR": str(tmp_path / "state"),
        "MLOPS_LANDING_CONTAINER": f"landing-{uuid.uuid4().hex[:8]}",
        "MLOPS_CODE_CONTAINER": f"flow-code-{uuid.uuid4().hex[:8]}",
        "MLOPS_PREFECT_HOST": str(where.hostname),
        "MLOPS_PREFECT_PORT": str(where.port),
        # A short smoke test with a generous budget: the loop is under test, not latency.
        "MLOPS_SMOKE_REQUESTS": "20",
        "MLOPS_SMOKE_P95_BUDGET_MS": "5000",
        **{f"MLOPS_AZURE__{name}": value for name, value in AZURE.items()},
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def aml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorkspace]:
    workspace = fake_workspace(monkeypatch)
    yield workspace
    assert not workspace.transport.unexpected, workspace.transport.unexpected


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def run_as(flow: Any, flow_run: Any, resources: object) -> State[Any]:
    """Run ``flow`` as the triggered ``flow_run`` (its id, its parameters) in this process,
    as a worker's run would, handing it the resources its parameters cannot carry."""
    state = run_flow(
        flow,
        flow_run=flow_run,
        parameters={**flow_run.parameters, "resources": resources},
        return_type="state",
    )
    assert isinstance(state, State), state
    assert state.state_details.flow_run_id == flow_run.id
    return state


async def published(pool: str) -> dict[str, Any]:
    async with get_client() as client:
        deployments = await client.read_deployments()
    return {d.name: d for d in deployments if d.work_pool_name == pool}


def test_a_blob_in_azure_reaches_production_through_the_scoring_route(
    settings: Settings,
    aml: FakeWorkspace,
    azurite: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.profile == "azure"
    # The deployments, published as `mlops deploy` does: the prefect-azure pool, the code
    # pushed to Blob Storage (Azurite holds the code container), pulled back by each run.
    code_store = settings.model_copy(
        update={"blob_connection_string": SecretStr(azurite.connection_string)}
    )
    publish(code_store, code_storage=save_code_storage)
    deployments = asyncio.run(published("mlops-aci"))
    assert set(deployments) == declared_deployments()
    pull = "prefect_azure.deployments.steps.pull_from_azure_blob_storage"
    for deployment in deployments.values():
        (step,) = deployment.pull_steps
        assert step[pull]["container"] == settings.code_container
    checkout = tmp_path / "run"
    checkout.mkdir()
    monkeypatch.chdir(checkout)  # where a flow run's container starts
    asyncio.run(run_steps(deployments["retraining"].pull_steps))
    pulled = checkout / "flows" / "retraining.py"
    assert pulled.read_bytes() == (REPO_ROOT / "flows" / "retraining.py").read_bytes()

    # The profile's adapters, as get_backends builds them, on the fake workspace.
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", FakeCredential)
    monkeypatch.setattr(backends.azure.client, "workspace_client", lambda *a, **k: aml.client)
    chosen = get_backends(settings)
    assert isinstance(chosen.compute, AmlCompute) and isinstance(chosen.registry, AmlModelRegistry)
    assert getattr(chosen.datalake, "endpoint", "") == ACCOUNT
    monkeypatch.setattr(backends.local.memory, "ENDPOINT", ACCOUNT)
    lake = InMemoryDataLake()
    lake.endpoint = ACCOUNT
    resources = dataclasses.replace(chosen, datalake=lake)
    models = aml.serve_models(settings.model_name, {})
    jobs = TrainingJobs(aml, lake, models, tmp_path / "cluster", monkeypatch)

    # 1. A producer uploads a file; Event Grid delivers BlobCreated to the relay.
    landing = settings.landing_container
    lake.ensure_containers(landing)
    lake.put(landing, "2026/batch-a.csv", DATA.read_bytes())
    delivery = blob_created("eg-azure-1", "2026/batch-a.csv", container=landing)
    config = relay.RelayConfig(api_url=settings.prefect_api_url, landing_container=landing)
    assert len(relay.relay([delivery, delivery], config).posted) == 2  # a redelivery too

    # 2. The published retraining deployment's trigger starts one run; this process runs it.
    (retrain_run,) = wait_for("the retraining run", lambda: runs_of(deployments["retraining"].id))
    assert retrain_run.parameters == {
        "data_uri": f"{ACCOUNT}/{landing}/2026/batch-a.csv",
        "drain_landing": True,
    }
    state = run_as(retraining, retrain_run, resources)
    summary = result_of(state, RetrainingSummary)
    assert state.is_completed() and summary is not None, state
    assert (summary.outcome, summary.version) == ("registered", "1"), summary
    # The job ran the training entrypoint on the curated set; the worker read its record.
    (job,) = jobs.commands
    assert jobs.status[job] == "Completed"
    (put,) = models.versions.values()
    assert put["properties"]["modelUri"] == f"azureml://jobs/{job}/outputs/model"
    assert models.tags("1")["mlops.alias.candidate"]

    # 3. mlops.model.registered -> the release deployment's trigger -> one run.
    (release_run,) = wait_for("the release run", lambda: runs_of(deployments["release"].id))
    assert release_run.parameters == {"model_name": settings.model_name, "version": "1"}

    # 4. Release: the profile's choice (ACR, ACI, the online endpoint with its autoscale)...
    chosen_release = get_release_backends(settings, start_engine=False)
    # The ACI pool has no Docker engine: the image is built in the registry (ACR Tasks).
    assert isinstance(chosen_release.builder, AcrTaskImageBuilder)
    qa_target = chosen_release.target.target("qa")  # type: ignore[attr-defined]
    production = chosen_release.target.target("production")  # type: ignore[attr-defined]
    assert isinstance(qa_target, AciTarget) and qa_target.subnet_id == SUBNET
    assert isinstance(production, AksOnlineTarget) and production.kind == "kubernetes"
    assert production.autoscale == Autoscale(2, 6, 60, 15)
    # ...on the fakes, with the model from the workspace registry.
    registry = AmlModelRegistry(aml.client)
    with azure_release(registry, tmp_path / "images", autoscale=production.autoscale) as azure:
        state = run_as(release, release_run, azure.resources)
        report = result_of(state, ReleaseReport)
        assert state.is_completed() and report is not None, state
        assert (report.outcome, report.production_after) == ("released", "1")
        # QA ran privately; production was smoke tested through the scoring route only.
        (qa_put,) = azure.transport.sent("PUT", r"/containerGroups/diabetes-scoring-qa\?")
        assert qa_put.json()["properties"]["ipAddress"]["type"] == "Private"
        scoring = f"/api/v1/endpoint/{ENDPOINT}/score"
        assert {(method, path) for method, path, _ in azure.router.seen} == {("POST", scoring)}
        deployment = azure.endpoints.live(ENDPOINT)
        assert deployment is not None
        assert azure.endpoints.image(deployment) == report.image
        assert deployment["properties"]["scaleSettings"] == {
            "scaleType": "TargetUtilization",
            "minInstances": 2,
            "maxInstances": 6,
            "pollingInterval": "PT15S",
            "targetUtilizationPercentage": 60,
        }
    assert "mlops.alias.production" in models.tags("1")
