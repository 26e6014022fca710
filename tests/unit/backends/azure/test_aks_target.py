"""AksOnlineTarget against a fake workspace: the endpoint and deployment requests the real
azure-ai-ml SDK sends for Kubernetes online endpoints."""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from typing import Any

import pytest

from backends.azure.aks import AksOnlineTarget, deployment_name
from core.interfaces import BackendError, DeploymentTarget, NotFoundError, ReleaseSpec

from .conftest import ARM, WS, Recorded, RecordingTransport, Reply

ENDPOINTS = rf"/workspaces/{WS}/onlineEndpoints"
NAME = "diabetes-scoring-production"
HOST = "aks-prod.westeurope.cloudapp.azure.com"
KEY = "primary-endpoint-k3y-0123456789abcdef"
SECONDARY = "secondary-endpoint-k3y-0123456789abcdef"
IMAGE = "acr.azurecr.io/diabetes-scoring"
V1 = ReleaseSpec("diabetes-ridge", "1", "a" * 64, image=f"{IMAGE}:1", replicas=2)
V2 = ReleaseSpec("diabetes-ridge", "2", "b" * 64, image=f"{IMAGE}:2", replicas=3)
V3 = ReleaseSpec("diabetes-ridge", "3", "c" * 64, image=f"{IMAGE}:3", replicas=2)
D1, D2, D3 = (deployment_name(r) for r in (V1, V2, V3))
INSTANCE_RESOURCES = {
    "containerResourceRequests": {"cpu": "100m", "memory": "2Gi"},
    "containerResourceLimits": {"cpu": "2", "memory": "2Gi"},
}


VAULT = "https://kvmlopsapp.vault.azure.net"
ENDPOINT_IDENTITY = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-mlops/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-endpoint"
)


class MirroredKeys:
    """Key Vault as the target sees it (the adapter itself: test_keyvault.py)."""

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}

    def put(self, name: str, value: str) -> str:
        versions = self.values.setdefault(name, [])
        if not versions or versions[-1] != value:
            versions.append(value)
        return f"{VAULT}/secrets/{name}/v{len(versions)}"


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class FakeAmlEndpoints:
    """Online endpoints and their deployments as Azure ML keeps them (ARM JSON).

    Writes are accepted at once (201 + ``Azure-AsyncOperation``); their operation finishes
    on its first poll, as Succeeded, or as Failed for the deployments named in ``failing``.
    ``events`` records what changed, in order, as the service saw it. Like Azure ML, it
    refuses traffic for a deployment that is not (yet) provisioned.
    """

    def __init__(self, transport: RecordingTransport) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, dict[str, Any]]] = {}  # endpoint -> name -> JSON
        self.failing: set[str] = set()
        self.events: list[tuple[Any, ...]] = []
        self._operations: dict[str, Any] = {}
        one = r"/([^/?]+)\?"
        transport.route("GET", rf"/workspaces/{WS}\?", self._workspace)
        transport.route("PUT", rf"/workspaces/{WS}/environments/[^/]+/versions/[^/?]+\?", self._env)
        transport.route("GET", ENDPOINTS + one, self._get_endpoint)
        transport.route("PUT", ENDPOINTS + one, self._put_endpoint)
        transport.route("DELETE", ENDPOINTS + one, self._delete_endpoint)
        transport.route("POST", ENDPOINTS + r"/([^/?]+)/listKeys\?", self._keys)
        transport.route("GET", ENDPOINTS + r"/([^/?]+)/deployments\?", self._list)
        deployment = ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)\?"
        transport.route("GET", deployment, self._get_deployment)
        transport.route("PUT", deployment, self._put_deployment)
        transport.route("DELETE", deployment, self._delete_deployment)
        transport.route("GET", r"/operations/aml-", self._poll)

    # ------------------------------------------------------------------ views for tests
    def traffic(self) -> dict[str, int]:
        return dict(self.endpoints[NAME]["properties"]["traffic"])

    def names(self) -> list[str]:
        return sorted(self.deployments.get(NAME, {}))

    # ------------------------------------------------------------------ routes
    @staticmethod
    def _workspace(request: Recorded) -> dict[str, Any]:
        return {"id": ARM, "name": WS, "location": "westeurope", "properties": {}}

    @staticmethod
    def _env(request: Recorded) -> Reply:
        path = request.url.split("?")[0]
        env = {"id": path.split("management.azure.com")[-1], **request.json()}
        return Reply(201, env)

    def _get_endpoint(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)", request)[0]
        if name not in self.endpoints:
            return _error(404, "UserError", f"endpoint {name} not found")
        return Reply(200, self.endpoints[name])

    def _put_endpoint(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)", request)[0]
        body = request.json()
        props = body["properties"]
        traffic = {k: int(v) for k, v in (props.get("traffic") or {}).items()}
        for deployment, share in traffic.items():
            state = self.deployments.get(name, {}).get(deployment, {}).get("properties", {})
            if share and state.get("provisioningState") != "Succeeded":
                return _error(400, "BadArgument", f"traffic to {deployment}: not ready")
        props.update(
            traffic=traffic,
            provisioningState="Succeeded",
            scoringUri=f"http://{HOST}/api/v1/endpoint/{name}/score",
            swaggerUri=f"http://{HOST}/api/v1/endpoint/{name}/swagger.json",
        )
        identity = {"type": "SystemAssigned", "principalId": "p-1", "tenantId": "t-1"}
        stored = {"id": f"{ARM}/onlineEndpoints/{name}", "name": name, **body}
        identity = body.get("identity") or identity
        stored.update(identity=identity, kind="K8S" if props.get("compute") else "Managed")
        stored["type"] = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
        self.endpoints[name] = stored
        self.deployments.setdefault(name, {})
        self.events.append(("traffic", traffic, body.get("tags") or {}))
        return self._accepted(f"ep-{name}", {"status": "Succeeded"}, stored)

    def _delete_endpoint(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)", request)[0]
        if self.endpoints.pop(name, None) is None:
            return _error(404, "UserError", f"endpoint {name} not found")
        self.deployments.pop(name, None)
        self.events.append(("delete-endpoint", name))
        return self._accepted(f"ep-del-{name}", {"status": "Succeeded"}, None, 202)

    def _keys(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)/listKeys", request)[0]
        if name not in self.endpoints:
            return _error(404, "UserError", f"endpoint {name} not found")
        return Reply(200, {"primaryKey": KEY, "secondaryKey": SECONDARY})

    def _list(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)/deployments", request)[0]
        return Reply(200, {"value": list(self.deployments.get(name, {}).values())})

    def _get_deployment(self, request: Recorded) -> Reply:
        name, deployment = _match(ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)", request)
        stored = self.deployments.get(name, {}).get(deployment)
        if stored is None:
            return _error(404, "UserError", f"deployment {deployment} not found")
        return Reply(200, stored)

    def _put_deployment(self, request: Recorded) -> Reply:
        name, deployment = _match(ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)", request)
        if name not in self.endpoints:
            return _error(404, "UserError", f"endpoint {name} not found")
        body = request.json()
        failed = deployment in self.failing
        stored = {
            "id": f"{ARM}/onlineEndpoints/{name}/deployments/{deployment}",
            "name": deployment,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            **body,
        }
        props = stored["properties"]
        props["provisioningState"] = "Failed" if failed else "Succeeded"
        # Azure ML answers with its defaults filled in, among them the resources the instance
        # type gives each instance (the SDK cannot read a Kubernetes deployment without them).
        props.setdefault("containerResourceRequirements", INSTANCE_RESOURCES)
        props.setdefault("scaleSettings", {"scaleType": "Default"})
        self.deployments[name][deployment] = stored
        self.events.append(("deployment-failed" if failed else "deployment", deployment))
        status: dict[str, Any] = {"status": "Succeeded"}
        if failed:
            message = "Deployment failed: the readiness probe never answered"
            status = {"status": "Failed", "error": {"code": "DeploymentFailed", "message": message}}
        pending = copy.deepcopy(stored)
        pending["properties"]["provisioningState"] = "Creating"
        return self._accepted(f"dep-{deployment}", status, pending)

    def _delete_deployment(self, request: Recorded) -> Reply:
        name, deployment = _match(ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)", request)
        if self.deployments.get(name, {}).pop(deployment, None) is None:
            return _error(404, "UserError", f"deployment {deployment} not found")
        self.events.append(("delete-deployment", deployment))
        return self._accepted(f"dep-del-{deployment}", {"status": "Succeeded"}, None, 202)

    def _accepted(self, op: str, status: dict[str, Any], body: Any, code: int = 201) -> Reply:
        op = f"{op}-{len(self._operations)}"
        self._operations[op] = status
        poll = f"https://management.azure.com/operations/aml-{op}?api-version=2023-04-01-preview"
        headers = {"Azure-AsyncOperation": poll, "Retry-After": "0"}
        return Reply(code, body, headers)

    def _poll(self, request: Recorded) -> Reply:
        op = _match(r"/operations/aml-([^/?]+)", request)[0]
        return Reply(200, self._operations[op])


def _match(pattern: str, request: Recorded) -> tuple[str, ...]:
    found = re.search(pattern, request.url)
    assert found, request.url
    return found.groups()


@pytest.fixture
def fake(aml: Any) -> FakeAmlEndpoints:
    return FakeAmlEndpoints(aml.transport)


@pytest.fixture
def vault() -> MirroredKeys:
    return MirroredKeys()


@pytest.fixture
def target(aml: Any, vault: MirroredKeys) -> AksOnlineTarget:
    return AksOnlineTarget(aml.client, "aks-prod", vault, identity=ENDPOINT_IDENTITY, timeout=30)


def test_is_a_deployment_target(target: AksOnlineTarget) -> None:
    assert isinstance(target, DeploymentTarget)


def test_deployment_names_are_valid_azure_ml_names() -> None:
    assert D1 == f"v1-aaaaaaaa-{D1[-6:]}" and len({D1, D2, D3}) == 3
    long = deployment_name(
        ReleaseSpec("m", "2026.11.30_RC1+build.123456789", "D" * 64, image="i:1")
    )
    assert long.startswith("v2026-11-30-rc1-") and long[-16:-7] == "-dddddddd"
    rebuilt = deployment_name(dataclasses.replace(V1, image=f"{IMAGE}:1-rebuilt"))
    assert rebuilt != D1  # a new image of the same model is a new deployment
    for name in (D1, long, rebuilt):
        assert re.fullmatch(r"[a-z][-a-z0-9]{1,30}[a-z0-9]", name), name


def test_first_deploy_creates_the_endpoint_and_sends_all_traffic_to_it(
    fake: FakeAmlEndpoints,
    target: AksOnlineTarget,
    aml: Any,
    vault: MirroredKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # even debug logs must not carry the keys

    endpoint = target.deploy("production", V1)

    transport = aml.transport
    first, second = transport.sent("PUT", ENDPOINTS + rf"/{NAME}\?")
    created = first.json()
    assert created["properties"]["authMode"] == "Key"
    assert created["properties"]["compute"] == f"{ARM}/computes/aks-prod"
    assert not created["properties"]["traffic"]
    (put,) = transport.sent("PUT", ENDPOINTS + rf"/{NAME}/deployments/{D1}\?")
    body = put.json()
    assert body["sku"]["capacity"] == 2
    assert body["properties"]["endpointComputeType"] == "Kubernetes"
    assert body["properties"]["environmentVariables"] == {
        "SCORING_MODEL_NAME": "diabetes-ridge",
        "SCORING_MODEL_VERSION": "1",
        "SCORING_MODEL_SHA256": "a" * 64,
        # Key Vault references, resolved by Azure ML's secret injection: no key in the spec.
        "SCORING_API_KEY": f"${{{{keyvault:{VAULT}/secrets/{NAME}-primary-key/v1}}}}",
        "SCORING_SECONDARY_API_KEY": f"${{{{keyvault:{VAULT}/secrets/{NAME}-secondary-key/v1}}}}",
    }
    assert KEY.encode() not in put.body and SECONDARY.encode() not in put.body
    assert vault.values == {f"{NAME}-primary-key": [KEY], f"{NAME}-secondary-key": [SECONDARY]}
    assert created["identity"]["type"] == "UserAssigned"
    assert list(created["identity"]["userAssignedIdentities"]) == [ENDPOINT_IDENTITY]
    assert body["tags"] == {
        "model_name": "diabetes-ridge",
        "model_version": "1",
        "model_sha256": "a" * 64,
        "image": V1.image,
    }
    assert "model" not in body["properties"]  # the model is in the image
    # The image and its probe and scoring routes travel as an (anonymous) environment.
    (env,) = transport.sent("PUT", r"/environments/[^/]+/versions/")
    assert body["properties"]["environmentId"] == ARM + env.url.split(WS)[1].split("?")[0]
    assert env.json()["properties"]["image"] == V1.image
    assert env.json()["properties"]["inferenceConfig"] == {
        "livenessRoute": {"path": "/healthz", "port": 5001},
        "readinessRoute": {"path": "/", "port": 5001},
        "scoringRoute": {"path": "/score", "port": 5001},
    }
    # All traffic went to the deployment, after it succeeded, in one endpoint update.
    assert second.json()["properties"]["traffic"] == {D1: 100}
    assert fake.events[1:] == [
        ("deployment", D1),
        ("traffic", {D1: 100}, {}),
    ]
    assert endpoint.url == f"http://{HOST}/api/v1/endpoint/{NAME}"
    assert (endpoint.key, endpoint.model_version, endpoint.image) == (KEY, "1", V1.image)
    assert endpoint.environment == "production"
    assert KEY not in repr(endpoint)
    assert KEY not in caplog.text and SECONDARY not in caplog.text
    assert target.health("production")
    assert target.current_release("production") == ReleaseSpec(
        "diabetes-ridge", "1", "a" * 64, image=V1.image, replicas=2
    )
    assert target.previous("production") is None


def test_replicas_are_at_least_min_replicas(fake: FakeAmlEndpoints, aml: Any) -> None:
    target = AksOnlineTarget(
        aml.client, "aks-prod", MirroredKeys(), min_replicas=3, instance_type="cpu-2"
    )
    target.deploy("production", ReleaseSpec("m", "1", "a" * 64, image="i:1"))  # replicas=1
    (put,) = aml.transport.sent("PUT", r"/deployments/")
    assert put.json()["sku"]["capacity"] == 3
    assert put.json()["properties"]["instanceType"] == "cpu-2"


def test_without_a_compute_production_is_a_managed_online_endpoint(
    fake: FakeAmlEndpoints, aml: Any, vault: MirroredKeys
) -> None:
    with pytest.raises(ValueError, match="instance_type"):
        AksOnlineTarget(aml.client, "", vault)
    target = AksOnlineTarget(
        aml.client, "", vault, identity=ENDPOINT_IDENTITY, instance_type="Standard_DS3_v2"
    )

    endpoint = target.deploy("production", V1)

    created = aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}\?")[0].json()
    assert "compute" not in created["properties"]
    assert list(created["identity"]["userAssignedIdentities"]) == [ENDPOINT_IDENTITY]
    (put,) = aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}/deployments/{D1}\?")
    body = put.json()
    assert body["properties"]["endpointComputeType"] == "Managed"
    assert body["properties"]["instanceType"] == "Standard_DS3_v2"
    assert body["properties"]["environmentVariables"]["SCORING_API_KEY"].startswith(
        "${{keyvault:" + VAULT
    )
    assert KEY.encode() not in put.body and SECONDARY.encode() not in put.body
    assert (endpoint.key, endpoint.model_version) == (KEY, "1")


def test_a_second_deploy_switches_traffic_once_the_new_deployment_is_ready(
    fake: FakeAmlEndpoints, target: AksOnlineTarget
) -> None:
    target.deploy("production", V1)
    start = len(fake.events)

    endpoint = target.deploy("production", V2)

    assert fake.events[start:] == [
        ("deployment", D2),  # created and ready while D1 still had all the traffic
        ("traffic", {D2: 100}, {"previous": D1}),
    ]
    assert fake.traffic() == {D2: 100}
    assert fake.names() == sorted([D1, D2])  # the previous release still runs
    assert endpoint.model_version == "2"
    assert target.current_release("production") == V2
    assert target.previous("production") == V1


def test_a_third_deploy_deletes_the_oldest_deployment(
    fake: FakeAmlEndpoints, target: AksOnlineTarget
) -> None:
    target.deploy("production", V1)
    target.deploy("production", V2)
    start = len(fake.events)

    target.deploy("production", V3)

    assert fake.events[start:] == [
        ("deployment", D3),
        ("traffic", {D3: 100}, {"previous": D2}),
        ("delete-deployment", D1),  # the release before the previous one
    ]
    assert fake.names() == sorted([D2, D3])
    assert (target.current_release("production"), target.previous("production")) == (V3, V2)


def test_a_failed_deployment_leaves_production_as_it_was(
    fake: FakeAmlEndpoints,
    target: AksOnlineTarget,
    aml: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    target.deploy("production", V1)
    fake.failing.add(D2)
    start, puts = len(fake.events), len(aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}\?"))

    with pytest.raises(BackendError) as raised:
        target.deploy("production", V2)

    message = str(raised.value)
    assert NAME in message and D2 in message and "readiness probe" in message
    assert f"still serves {D1}" in message
    assert KEY not in message and SECONDARY not in message
    assert KEY not in caplog.text and SECONDARY not in caplog.text
    assert fake.events[start:] == [("deployment-failed", D2), ("delete-deployment", D2)]
    assert len(aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}\?")) == puts  # traffic untouched
    assert fake.traffic() == {D1: 100}
    assert fake.names() == [D1]
    assert target.current_release("production") == V1 and target.health("production")


def test_a_deployment_that_outlasts_the_timeout_fails_the_deploy(
    fake: FakeAmlEndpoints, aml: Any
) -> None:
    target = AksOnlineTarget(aml.client, "aks-prod", MirroredKeys(), timeout=0.2)
    target.deploy("production", V1)
    polls: list[str] = []

    def slow(request: Recorded) -> Reply:
        polls.append(request.url)
        if len(polls) == 1:  # still creating: the SDK polls again after Retry-After
            return Reply(200, {"status": "Running"}, {"Retry-After": "1"})
        return Reply(200, {"status": "Succeeded"})

    aml.transport.route("GET", r"/operations/aml-dep-v2-", slow)

    with pytest.raises(BackendError, match="did not finish within 0.2 s"):
        target.deploy("production", V2)

    assert fake.traffic() == {D1: 100}
    assert D2 not in fake.names()  # the unfinished deployment was deleted


def test_redeploying_the_live_release_is_a_no_op(
    fake: FakeAmlEndpoints, target: AksOnlineTarget, aml: Any
) -> None:
    target.deploy("production", V1)
    target.deploy("production", V2)
    writes = len([r for r in aml.transport.requests if r.method != "GET"])

    endpoint = target.deploy("production", V2)

    sent = [r for r in aml.transport.requests if r.method != "GET"][writes:]
    assert [r.method for r in sent] == ["POST"]  # listKeys for the endpoint's key; no PUT
    assert endpoint.model_version == "2" and endpoint.key == KEY
    assert target.previous("production") == V1  # the rollback point is kept

    # More replicas of the live release: the live deployment is scaled in place.
    target.deploy("production", dataclasses.replace(V2, replicas=4))
    assert fake.deployments[NAME][D2]["sku"]["capacity"] == 4
    assert fake.traffic() == {D2: 100} and target.previous("production") == V1


def test_rollback_swaps_current_and_previous(
    fake: FakeAmlEndpoints, target: AksOnlineTarget, aml: Any
) -> None:
    target.deploy("production", V1)
    target.deploy("production", V2)
    deployment_puts = len(aml.transport.sent("PUT", r"/deployments/"))

    endpoint = target.rollback("production")

    assert endpoint.model_version == "1"
    assert fake.traffic() == {D1: 100}
    assert fake.endpoints[NAME]["tags"] == {"previous": D2}
    assert (target.current_release("production"), target.previous("production")) == (V1, V2)
    assert len(aml.transport.sent("PUT", r"/deployments/")) == deployment_puts  # no redeploy

    target.rollback("production")
    assert (target.current_release("production"), target.previous("production")) == (V2, V1)


def test_nothing_deployed_then_teardown(
    fake: FakeAmlEndpoints, target: AksOnlineTarget, aml: Any
) -> None:
    assert target.current("production") is None and not target.health("production")
    assert target.current_release("production") is None
    with pytest.raises(NotFoundError, match="no previous release"):
        target.rollback("production")
    target.deploy("production", V1)
    with pytest.raises(NotFoundError, match="no previous release"):
        target.rollback("production")

    target.teardown("production")
    target.teardown("production")  # nothing left: a no-op

    assert len(aml.transport.sent("DELETE", ENDPOINTS + rf"/{NAME}\?")) == 2
    assert fake.events[-1] == ("delete-endpoint", NAME)
    assert NAME not in fake.endpoints
    assert target.current("production") is None


def test_deploy_checks_the_release_first(target: AksOnlineTarget, aml: Any) -> None:
    with pytest.raises(ValueError, match="image"):
        target.deploy("production", ReleaseSpec("m", "1", "c" * 64))
    with pytest.raises(ValueError, match="sha256"):
        target.deploy("production", ReleaseSpec("m", "1", "not-a-digest", image="i:1"))
    with pytest.raises(ValueError, match="endpoint name"):
        target.deploy("a-very-long-environment-name-indeed", V1)
    assert aml.transport.requests == []
