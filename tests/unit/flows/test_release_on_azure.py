"""The release flow with the Azure adapters against the Azure fakes, checked over real HTTP.

The ARM side is the real SDKs on a recording transport (tests/utils/azure_ml_endpoints.py,
azure_aci.py); scoring requests go over loopback sockets to Azure ML's router, which forwards
only ``POST`` on the scoring route (tests/utils/azure_router.py), and to QA's private network.
Both end in the real scoring app. ``HttpProbe`` is the production probe: the release passes
only if everything it checks goes through the scoring route.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.ai.ml import MLClient
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from backends.azure.aci import AciTarget
from backends.azure.aks import AksOnlineTarget, Autoscale
from backends.local.registry import LocalModelRegistry
from backends.routed import TargetsByEnvironment
from core.probe import HttpProbe
from core.results import ReleaseReport
from core.settings import Settings, get_settings
from flows.outcome import result_of
from flows.release import release
from flows.resources import ReleaseResources
from tests.utils.azure_aci import FakeAci
from tests.utils.azure_http import RG, SUB, WS, FakeCredential, RecordingTransport
from tests.utils.azure_ml_endpoints import KEY, FakeAmlEndpoints, MirroredKeys
from tests.utils.azure_router import Containers, OnlineRouter, PrivateNetwork, serve
from training import train
from training.artifacts import MODEL_FILE

DATA = Path(__file__).resolve().parents[2] / "data" / "good"
ENDPOINT = "diabetes-scoring-production"
SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/rg-release/providers/Microsoft.Network/"
    "virtualNetworks/vnet-mlops/subnets/qa"
)
QA_KEY = "qa-k3y-from-key-vault-0123456789abcdef"


class DigestImageBuilder:
    """Names each build by digest, as ``AcrImageBuilder`` returns a pushed image, and keeps
    the model folder behind it (what the fake containers run)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images: dict[str, Path] = {}

    def build(
        self, model_name: str, model_version: str, artifact_dir: Path, code_version: str
    ) -> str:
        content = (artifact_dir / MODEL_FILE).read_bytes() + code_version.encode()
        digest = hashlib.sha256(content).hexdigest()
        folder = self.root / digest
        if not folder.exists():
            shutil.copytree(artifact_dir, folder)
        reference = f"mlops.azurecr.io/mlops/{model_name}@sha256:{digest}"
        self.images[reference] = folder
        return reference


@dataclass
class Azure:
    resources: ReleaseResources
    transport: RecordingTransport
    endpoints: FakeAmlEndpoints
    aci: FakeAci
    router: OnlineRouter
    router_url: str


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "outputs"
    assert train.main(["--data", str(DATA / "diabetes_batch_a.csv"), "--output", str(out)]) == 0
    return out


@pytest.fixture(params=["kubernetes", "managed"])
def azure(
    request: pytest.FixtureRequest,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Azure]:
    """Production on a Kubernetes or a managed online endpoint: the one setting, same tests."""
    # A short smoke test with a generous budget: this test is about routes, not latency.
    monkeypatch.setenv("MLOPS_SMOKE_REQUESTS", "20")
    monkeypatch.setenv("MLOPS_SMOKE_P95_BUDGET_MS", "5000")
    get_settings.cache_clear()
    transport = RecordingTransport()
    builder = DigestImageBuilder(tmp_path / "images")
    containers = Containers(builder.images)
    vault = MirroredKeys()
    aci = FakeAci(transport, private_ip="127.0.0.1")
    endpoints = FakeAmlEndpoints(transport)
    router = OnlineRouter(endpoints, containers, vault.resolve)
    qa_network = PrivateNetwork(aci, "diabetes-scoring-qa", containers)
    try:
        with serve(router) as router_port, serve(qa_network) as qa_port:
            endpoints.router_base = f"http://127.0.0.1:{router_port}"
            qa = AciTarget(
                ContainerInstanceManagementClient(FakeCredential(), SUB, transport=transport),
                "rg-release",
                "westeurope",
                keys=lambda environment: QA_KEY,
                subnet_id=SUBNET,
                port=qa_port,
            )
            ml_client = MLClient(
                FakeCredential(),
                SUB,
                RG,
                WS,
                transport=transport,
                show_progress=False,
                enable_telemetry=False,
            )
            production = AksOnlineTarget(
                ml_client,
                "aks-prod",
                vault,
                kind=request.param,
                instance_type="Standard_DS3_v2" if request.param == "managed" else "",
                autoscale=Autoscale(2, 5, 65, 15),
                timeout=30,
            )
            target = TargetsByEnvironment({"qa": qa, "production": production})
            registry = LocalModelRegistry(tmp_path / "registry")
            resources = ReleaseResources(registry, builder, target, HttpProbe())
            yield Azure(resources, transport, endpoints, aci, router, endpoints.router_base)
    finally:
        containers.close()
    assert not transport.unexpected, f"unrouted requests: {transport.unexpected}"


def register(azure: Azure, settings: Settings, folder: Path) -> str:
    registry = azure.resources.registry
    version = registry.register(settings.model_name, folder, MODEL_FILE, {})
    registry.set_alias(settings.model_name, "candidate", version.version)
    return version.version


def run(azure: Azure) -> tuple[Any, ReleaseReport]:
    state = release(resources=azure.resources, return_state=True)
    report = result_of(state, ReleaseReport)
    assert report is not None, state
    return state, report


def test_a_release_reaches_production_through_the_scoring_route_only(
    azure: Azure, settings: Settings, model_folder: Path
) -> None:
    version = register(azure, settings, model_folder)

    state, report = run(azure)

    assert state.is_completed(), (state.message, report.reason, report.smoke_qa)
    assert (report.outcome, report.production_after) == ("released", version)
    assert report.image and "@sha256:" in report.image  # released by digest
    # Every production request of the smoke tests and the version check went through the
    # router, on the scoring route: 200s, the 401s of the auth check, and the 424s the
    # router makes of the service's refusals of bad input.
    scoring = f"/api/v1/endpoint/{ENDPOINT}/score"
    assert {(method, path) for method, path, _ in azure.router.seen} == {("POST", scoring)}
    assert {status for *_, status in azure.router.seen} == {200, 401, 424}
    # What production runs: the digest image, the declared routes, target-utilization scale.
    deployment = azure.endpoints.live(ENDPOINT)
    assert deployment is not None
    assert azure.endpoints.image(deployment) == report.image
    env = azure.endpoints.environments[deployment["properties"]["environmentId"]]
    assert env["properties"]["inferenceConfig"]["scoringRoute"] == {"path": "/score", "port": 5001}
    autoscale = {
        "scaleType": "TargetUtilization",
        "minInstances": 2,
        "maxInstances": 5,
        "pollingInterval": "PT15S",
        "targetUtilizationPercentage": 65,
    }
    if deployment["properties"]["endpointComputeType"] == "Kubernetes":
        assert deployment["properties"]["scaleSettings"] == autoscale
    else:  # managed: a fixed count of the minimum (Azure ML's default scale settings)
        assert deployment["properties"]["endpointComputeType"] == "Managed"
        assert deployment["properties"]["scaleSettings"] == {"scaleType": "Default"}
        assert deployment["sku"]["capacity"] == 2
    # QA ran privately in its subnet and was torn down after the promotion.
    (qa_put,) = azure.transport.sent("PUT", r"/containerGroups/diabetes-scoring-qa\?")
    assert qa_put.json()["properties"]["ipAddress"]["type"] == "Private"
    assert qa_put.json()["properties"]["subnetIds"] == [{"id": SUBNET}]
    assert azure.aci.groups == {}


def test_the_router_answers_everything_but_post_on_the_scoring_route_itself(
    azure: Azure, settings: Settings, model_folder: Path
) -> None:
    register(azure, settings, model_folder)
    assert run(azure)[0].is_completed()
    base = f"{azure.router_url}/api/v1/endpoint/{ENDPOINT}"
    key = {"Authorization": f"Bearer {KEY}"}

    # The container's own routes (readiness GET /, liveness GET /healthz, the OpenAPI and
    # model documents) are not reachable through the router.
    for method, url in [
        ("GET", f"{base}/score"),
        ("GET", f"{base}/"),
        ("GET", f"{base}/healthz"),
        ("GET", f"{base}/model"),
        ("GET", f"{azure.router_url}/"),
        ("POST", f"{base}/predict"),
    ]:
        assert httpx.request(method, url, headers=key).status_code == 404, (method, url)
    assert httpx.post(f"{base}/score", json={"data": [[0.0] * 10]}).status_code == 401
    scored = httpx.post(f"{base}/score", json={"data": [[0.0] * 10]}, headers=key)
    assert scored.status_code == 200 and scored.json()["model"]["version"] == "1"
    refused = httpx.post(f"{base}/score", json={"data": [[0.0] * 9]}, headers=key)
    assert refused.status_code == 424 and refused.content == b""
    assert refused.headers["ms-azureml-model-error-statuscode"] == "422"
