"""AksOnlineTarget against a fake workspace: the endpoint and deployment requests the real
azure-ai-ml SDK sends for Kubernetes online endpoints."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import pytest

from backends.azure.aks import AksOnlineTarget, Autoscale, deployment_name
from core.interfaces import BackendError, DeploymentTarget, NotFoundError, ReleaseSpec
from tests.utils.azure_http import (
    AML_DEPLOYMENT_API_VERSION,
    AML_ENDPOINT_API_VERSIONS,
    ARM,
    WS,
    Recorded,
    Reply,
)
from tests.utils.azure_ml_endpoints import (
    ENDPOINTS,
    KEY,
    SECONDARY,
    VAULT,
    FakeAmlEndpoints,
    MirroredKeys,
)

NAME = "diabetes-scoring-production"
HOST = "aks-prod.westeurope.cloudapp.azure.com"
ENDPOINT_IDENTITY = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-mlops/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-endpoint"
)
# Releases reference their image by digest, as AcrImageBuilder returns it.
IMAGE = "mlops.azurecr.io/mlops/diabetes-ridge@sha256:"
V1 = ReleaseSpec("diabetes-ridge", "1", "a" * 64, image=f"{IMAGE}{'1' * 64}", replicas=2)
V2 = ReleaseSpec("diabetes-ridge", "2", "b" * 64, image=f"{IMAGE}{'2' * 64}", replicas=3)
V3 = ReleaseSpec("diabetes-ridge", "3", "c" * 64, image=f"{IMAGE}{'3' * 64}", replicas=2)
D1, D2, D3 = (deployment_name(r) for r in (V1, V2, V3))


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
    rebuilt = deployment_name(dataclasses.replace(V1, image=f"{IMAGE}{'9' * 64}"))
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
    assert fake.traffic(NAME) == {D2: 100}
    assert fake.names(NAME) == sorted([D1, D2])  # the previous release still runs
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
    assert fake.names(NAME) == sorted([D2, D3])
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
    assert fake.traffic(NAME) == {D1: 100}
    assert fake.names(NAME) == [D1]
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

    aml.transport.route("GET", r"/mfeOperationsStatus/dep-v2-", slow)

    with pytest.raises(BackendError, match="did not finish within 0.2 s"):
        target.deploy("production", V2)

    assert fake.traffic(NAME) == {D1: 100}
    assert D2 not in fake.names(NAME)  # the unfinished deployment was deleted


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
    assert fake.traffic(NAME) == {D2: 100} and target.previous("production") == V1


def test_rollback_swaps_current_and_previous(
    fake: FakeAmlEndpoints, target: AksOnlineTarget, aml: Any
) -> None:
    target.deploy("production", V1)
    target.deploy("production", V2)
    deployment_puts = len(aml.transport.sent("PUT", r"/deployments/"))

    endpoint = target.rollback("production")

    assert endpoint.model_version == "1"
    assert fake.traffic(NAME) == {D1: 100}
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


def test_requests_use_the_api_versions_of_the_pinned_sdk(
    fake: FakeAmlEndpoints, target: AksOnlineTarget, aml: Any
) -> None:
    # The fakes answer in the shapes of these versions' REST specification.
    target.deploy("production", V1)
    target.deploy("production", V2)

    def versions(pattern: str, method: str = "") -> set[str]:
        sent = [
            r.url
            for r in aml.transport.requests
            if re.search(pattern, r.url.split("?")[0]) and method in ("", r.method)
        ]
        assert sent, pattern
        return {v for url in sent for v in re.findall(r"api-version=([^&]+)", url)}

    assert versions(r"/deployments/[^/]+$", "PUT") == {AML_DEPLOYMENT_API_VERSION}
    assert versions(r"/environments/", "PUT") == {AML_DEPLOYMENT_API_VERSION}
    assert versions(r"/onlineEndpoints/") == AML_ENDPOINT_API_VERSIONS
    assert all("api-version=" in r.url for r in aml.transport.requests)


def test_kubernetes_deployments_autoscale_on_target_utilization(
    fake: FakeAmlEndpoints, aml: Any, vault: MirroredKeys
) -> None:
    autoscale = Autoscale(
        min_instances=3, max_instances=6, target_utilization=60, polling_seconds=5
    )
    target = AksOnlineTarget(aml.client, "aks-prod", vault, autoscale=autoscale, timeout=30)

    target.deploy("production", V1)  # asks for 2 replicas: the autoscale minimum wins

    (put,) = aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}/deployments/{D1}\?")
    body = put.json()
    # The REST specification's TargetUtilizationScaleSettings, field for field.
    assert body["properties"]["scaleSettings"] == {
        "scaleType": "TargetUtilization",
        "minInstances": 3,
        "maxInstances": 6,
        "pollingInterval": "PT5S",
        "targetUtilizationPercentage": 60,
    }
    assert body["sku"]["capacity"] == 3
    assert target.current_release("production") == dataclasses.replace(V1, replicas=3)

    # A release asking for more instances than the maximum raises the maximum with it.
    target.deploy("production", dataclasses.replace(V2, replicas=8))
    (put,) = aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}/deployments/{D2}\?")
    scale = put.json()["properties"]["scaleSettings"]
    assert (scale["minInstances"], scale["maxInstances"]) == (8, 8)


def test_new_autoscale_settings_update_the_live_deployment_in_place(
    fake: FakeAmlEndpoints, aml: Any, vault: MirroredKeys
) -> None:
    AksOnlineTarget(aml.client, "aks-prod", vault, timeout=30).deploy("production", V1)
    puts = len(aml.transport.sent("PUT", r"/deployments/"))
    wider = Autoscale(min_instances=2, max_instances=10)
    target = AksOnlineTarget(aml.client, "aks-prod", vault, autoscale=wider, timeout=30)

    target.deploy("production", V1)

    sent = aml.transport.sent("PUT", r"/deployments/")[puts:]
    assert [r.url.split("?")[0].rsplit("/", 1)[-1] for r in sent] == [D1]
    assert sent[0].json()["properties"]["scaleSettings"]["maxInstances"] == 10
    assert fake.traffic(NAME) == {D1: 100} and fake.names(NAME) == [D1]
    target.deploy("production", V1)  # now as wanted: nothing to send
    assert len(aml.transport.sent("PUT", r"/deployments/")) == puts + 1


def test_one_setting_makes_production_a_managed_endpoint(
    fake: FakeAmlEndpoints, aml: Any, vault: MirroredKeys
) -> None:
    # kind="managed" wins over a configured compute: the setting alone decides.
    target = AksOnlineTarget(
        aml.client, "aks-prod", vault, kind="managed", instance_type="Standard_DS3_v2"
    )

    target.deploy("production", V1)

    created = aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}\?")[0].json()
    assert "compute" not in created["properties"]
    assert fake.endpoints[NAME]["kind"] == "Managed"
    (put,) = aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}/deployments/{D1}\?")
    body = put.json()
    assert body["properties"]["endpointComputeType"] == "Managed"
    # Managed deployments take a fixed count (the SDK refuses target-utilization settings).
    assert body["properties"].get("scaleSettings", {"scaleType": "Default"}) == {
        "scaleType": "Default"
    }
    assert body["sku"]["capacity"] == 2
    with pytest.raises(ValueError, match="Kubernetes online endpoint needs"):
        AksOnlineTarget(aml.client, "", vault, kind="kubernetes")


def _deploy_production(aml: Any, vault: MirroredKeys, **kwargs: Any) -> tuple[Any, dict[str, str]]:
    """Deploy V1 to production with a target given ``kwargs``: the PUT and its variables."""
    target = AksOnlineTarget(
        aml.client, "aks-prod", vault, identity=ENDPOINT_IDENTITY, timeout=30, **kwargs
    )
    target.deploy("production", V1)
    (put,) = aml.transport.sent("PUT", ENDPOINTS + rf"/{NAME}/deployments/{D1}\?")
    return put, put.json()["properties"]["environmentVariables"]


def test_a_collecting_deployment_gets_its_sas_as_a_key_vault_reference(
    fake: FakeAmlEndpoints, aml: Any, vault: MirroredKeys
) -> None:
    from backends.collect_sas import Collection

    sas = "https://lake.blob.core.windows.net/collected?sv=x&sig=S3CRET"
    put, env = _deploy_production(aml, vault, collection=Collection(lambda: sas, sample=1.0))
    assert env["SCORING_COLLECT_URL"] == f"${{{{keyvault:{VAULT}/secrets/{NAME}-collect-url/v1}}}}"
    assert (env["SCORING_COLLECT_ENV"], env["SCORING_COLLECT_SAMPLE"]) == ("production", "1.0")
    assert "SCORING_COLLECT_URL_FILE" not in env
    assert b"S3CRET" not in put.body and vault.values[f"{NAME}-collect-url"] == [sas]


def test_telemetry_gets_its_connection_string_as_a_key_vault_reference(
    fake: FakeAmlEndpoints, aml: Any, vault: MirroredKeys, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "InstrumentationKey=0000;IngestionEndpoint=https://ingest.example/;S3CRET"
    with caplog.at_level(logging.DEBUG):
        put, env = _deploy_production(aml, vault, appinsights_connection_string=secret)
    reference = f"${{{{keyvault:{VAULT}/secrets/{NAME}-appinsights/v1}}}}"
    assert env["SCORING_APPINSIGHTS_CONNECTION_STRING"] == reference
    assert b"S3CRET" not in put.body and vault.values[f"{NAME}-appinsights"] == [secret]
    assert "S3CRET" not in caplog.text


def test_without_telemetry_a_deployment_gets_no_connection_string(
    fake: FakeAmlEndpoints, aml: Any, vault: MirroredKeys
) -> None:
    _, env = _deploy_production(aml, vault)
    assert "SCORING_APPINSIGHTS_CONNECTION_STRING" not in env
    assert not any("appinsights" in name for name in vault.values)
