"""The release flow with the Azure adapters against the Azure fakes, checked over real HTTP.

The ARM side is the real SDKs on a recording transport (tests/utils/azure_ml_endpoints.py,
azure_aci.py); scoring requests go over loopback sockets to Azure ML's router, which forwards
only ``POST`` on the scoring route (tests/utils/azure_router.py), and to QA's private network.
Both end in the real scoring app. ``HttpProbe`` is the production probe: the release passes
only if everything it checks goes through the scoring route.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.local.registry import LocalModelRegistry
from core.results import ReleaseReport
from core.settings import Settings, get_settings
from flows.outcome import result_of
from flows.release import release
from tests.utils.azure_ml_endpoints import KEY
from tests.utils.azure_release import SUBNET, Azure, azure_release
from training import train
from training.artifacts import MODEL_FILE

DATA = Path(__file__).resolve().parents[2] / "data" / "good"
ENDPOINT = "diabetes-scoring-production"


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
    registry = LocalModelRegistry(tmp_path / "registry")
    with azure_release(registry, tmp_path / "images", kind=request.param) as azure:
        yield azure


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
    """Released through the fakes; then the router's own checks run on that production (a
    release through the fakes costs seconds: one serves both)."""
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

    router_answers_only_post_on_the_scoring_route(azure, version)


def router_answers_only_post_on_the_scoring_route(azure: Azure, version: str) -> None:
    """The router answers everything but POST on the scoring route itself with 404."""
    base = f"{azure.router_url}/api/v1/endpoint/{ENDPOINT}"
    key = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client() as http:  # one client: each new one loads the CA bundle
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
            assert http.request(method, url, headers=key).status_code == 404, (method, url)
        assert http.post(f"{base}/score", json={"data": [[0.0] * 10]}).status_code == 401
        scored = http.post(f"{base}/score", json={"data": [[0.0] * 10]}, headers=key)
        assert scored.status_code == 200 and scored.json()["model"]["version"] == version
        refused = http.post(f"{base}/score", json={"data": [[0.0] * 9]}, headers=key)
        assert refused.status_code == 424 and refused.content == b""
        assert refused.headers["ms-azureml-model-error-statuscode"] == "422"
