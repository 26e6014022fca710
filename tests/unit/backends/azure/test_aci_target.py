"""AciTarget against a fake ACI API: the container group PUTs the real SDK sends."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from backends.azure.aci import AciTarget
from core.interfaces import BackendError, DeploymentTarget, ReleaseSpec
from tests.utils.azure_aci import GROUPS, FakeAci
from tests.utils.azure_http import ACI_API_VERSION, SUB

KEY = "k3y-from-key-vault-0123456789"
QA_IDENTITY = (
    f"/subscriptions/{SUB}/resourceGroups/rg-release/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-qa"
)
SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/rg-release/providers/Microsoft.Network/"
    "virtualNetworks/vnet-mlops/subnets/qa"
)
# Releases reference their image by digest, as AcrImageBuilder returns it.
IMAGE = "acr.azurecr.io/mlops/diabetes-ridge@sha256:"
V1 = ReleaseSpec("diabetes-ridge", "1", "a" * 64, image=IMAGE + "1" * 64)
V2 = ReleaseSpec("diabetes-ridge", "2", "b" * 64, image=IMAGE + "2" * 64)


@pytest.fixture
def aci(transport: Any) -> FakeAci:
    return FakeAci(transport)


@pytest.fixture
def target(transport: Any, credential: Any) -> AciTarget:
    client = ContainerInstanceManagementClient(credential, SUB, transport=transport)
    return AciTarget(
        client,
        "rg-release",
        "westeurope",
        keys=lambda environment: KEY,
        subnet_id=SUBNET,
        registry_server="acr.azurecr.io",
        registry_identity=QA_IDENTITY,
    )


def test_is_a_deployment_target(target: AciTarget) -> None:
    assert isinstance(target, DeploymentTarget)


def test_deploy_puts_a_container_group_with_the_key_in_a_secret_volume(
    aci: FakeAci, target: AciTarget, transport: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # even debug logs must not carry the key

    endpoint = target.deploy("qa", V1)

    (put,) = transport.sent("PUT", GROUPS + r"/diabetes-scoring-qa\?api-version=")
    body = put.json()
    props = body["properties"]
    (container,) = props["containers"]
    assert container["properties"]["image"] == V1.image
    assert container["properties"]["ports"] == [{"port": 5001}]
    env = {v["name"]: v for v in container["properties"]["environmentVariables"]}
    # No secret in the environment: only where the key file is.
    assert env["SCORING_API_KEY_FILE"] == {
        "name": "SCORING_API_KEY_FILE",
        "value": "/mnt/secrets/api-key",
    }
    assert all("secureValue" not in v for v in env.values())
    assert "SCORING_API_KEY" not in env
    assert env["SCORING_MODEL_SHA256"]["value"] == V1.model_sha256
    assert env["SCORING_MODEL_VERSION"]["value"] == "1"
    assert container["properties"]["volumeMounts"] == [
        {"name": "secrets", "mountPath": "/mnt/secrets", "readOnly": True}
    ]
    (volume,) = props["volumes"]
    assert volume == {
        "name": "secrets",
        "secret": {"api-key": base64.b64encode(KEY.encode()).decode()},
    }
    # The key appears nowhere in clear: not in the environment, not anywhere in the body.
    assert KEY.encode() not in put.body
    assert container["properties"]["readinessProbe"]["httpGet"]["path"] == "/"
    assert container["properties"]["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # A private address in the QA subnet only: the key never crosses a public network.
    address = props["ipAddress"]
    assert (address["type"], address["ports"]) == ("Private", [{"protocol": "TCP", "port": 5001}])
    assert "dnsNameLabel" not in address and "ip" not in address
    assert props["subnetIds"] == [{"id": SUBNET}]
    assert put.url.endswith(f"?api-version={ACI_API_VERSION}")
    # The image is pulled as the QA identity: no registry user or password exists.
    assert props["imageRegistryCredentials"] == [
        {"server": "acr.azurecr.io", "identity": QA_IDENTITY}
    ]
    assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {QA_IDENTITY: {}}}
    assert body["location"] == "westeurope"
    assert body["tags"] == {
        "model_name": "diabetes-ridge",
        "model_version": "1",
        "model_sha256": "a" * 64,
        "image": V1.image,
    }
    assert transport.sent("GET", r"/operations/aci-diabetes-scoring-qa")  # waited for the LRO
    assert aci.keys == {"diabetes-scoring-qa": KEY}  # the container reads it from the volume
    assert endpoint.url == "http://10.20.1.4:5001"  # the group's private IP
    assert (endpoint.key, endpoint.model_version, endpoint.image) == (KEY, "1", V1.image)
    assert KEY not in repr(endpoint)
    assert KEY not in caplog.text
    assert target.health("qa")
    assert target.previous("qa") is None


def test_a_second_deploy_remembers_the_first_and_rollback_swaps(
    aci: FakeAci, target: AciTarget, transport: Any
) -> None:
    target.deploy("qa", V1)
    target.deploy("qa", V2)

    assert target.current_release("qa") == V2
    assert target.previous("qa") == V1
    tags = aci.groups["diabetes-scoring-qa"]["tags"]
    assert tags["previous.model_version"] == "1" and tags["model_version"] == "2"

    target.deploy("qa", V2)  # a redeploy keeps the rollback point
    assert target.previous("qa") == V1

    endpoint = target.rollback("qa")
    assert endpoint.model_version == "1"
    assert (target.current_release("qa"), target.previous("qa")) == (V1, V2)


def test_health_current_and_teardown(aci: FakeAci, target: AciTarget, transport: Any) -> None:
    assert target.current("qa") is None and not target.health("qa")
    with pytest.raises(BackendError, match="no previous release"):
        target.rollback("qa")
    aci.running = False
    target.deploy("qa", V1)
    assert not target.health("qa")
    assert target.current("qa") is not None

    target.teardown("qa")
    target.teardown("qa")

    assert len(transport.sent("DELETE", GROUPS + r"/diabetes-scoring-qa\?")) == 2
    assert target.current("qa") is None


def test_deploy_needs_an_image(target: AciTarget, transport: Any) -> None:
    with pytest.raises(ValueError, match="image"):
        target.deploy("qa", ReleaseSpec("m", "1", "c" * 64))
    assert transport.requests == []


def test_a_deploy_that_does_not_finish_in_time_is_an_error(
    aci: FakeAci, transport: Any, credential: Any
) -> None:
    # The operation stays InProgress: past the timeout the deploy must fail, not carry on
    # as if the group were there.
    transport.route(
        "GET",
        r"/operations/aci-",
        transport.Reply(200, {"status": "InProgress"}, {"Retry-After": "0"}),
    )
    client = ContainerInstanceManagementClient(credential, SUB, transport=transport)
    slow = AciTarget(
        client, "rg-release", "westeurope", keys=lambda e: KEY, subnet_id=SUBNET, timeout=0.5
    )
    with pytest.raises(BackendError, match=r"ACI did not finish within 0.5 s"):
        slow.deploy("qa", V1)


def test_a_failed_operation_is_a_backend_error_without_secrets(
    aci: FakeAci, target: AciTarget, transport: Any
) -> None:
    failed = {"status": "Failed", "error": {"code": "InaccessibleImage", "message": "no pull"}}
    transport.route("GET", r"/operations/aci-", transport.Reply(200, failed))
    with pytest.raises(BackendError, match="cannot deploy to ACI diabetes-scoring-qa") as caught:
        target.deploy("qa", V1)
    assert KEY not in str(caught.value)


def test_the_subnet_is_required(transport: Any, credential: Any) -> None:
    client = ContainerInstanceManagementClient(credential, SUB, transport=transport)
    with pytest.raises(ValueError, match="subnet"):
        AciTarget(client, "rg-release", "westeurope", keys=lambda e: KEY, subnet_id="vnet-mlops")


def _deploy_qa(
    transport: Any, credential: Any, **kwargs: Any
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """Deploy V1 to QA with a target given ``kwargs``: the PUT, its properties, its variables."""
    client = ContainerInstanceManagementClient(credential, SUB, transport=transport)
    target = AciTarget(
        client, "rg-release", "westeurope", keys=lambda e: KEY, subnet_id=SUBNET, **kwargs
    )
    target.deploy("qa", V1)
    (put,) = transport.sent("PUT", GROUPS + r"/diabetes-scoring-qa\?api-version=")
    props = put.json()["properties"]
    env = {
        v["name"]: v["value"] for v in props["containers"][0]["properties"]["environmentVariables"]
    }
    return put, props, env


def test_a_collecting_group_gets_its_sas_as_a_secret_file_not_a_variable(
    aci: FakeAci, transport: Any, credential: Any
) -> None:
    from backends.collect_sas import Collection

    sas = "https://lake.blob.core.windows.net/collected?sv=x&sig=S3CRET"
    collection = Collection(lambda: sas, sample=0.5)
    put, props, env = _deploy_qa(transport, credential, collection=collection)
    assert env["SCORING_COLLECT_URL_FILE"] == "/mnt/secrets/collect-url"
    assert (env["SCORING_COLLECT_ENV"], env["SCORING_COLLECT_SAMPLE"]) == ("qa", "0.5")
    (volume,) = props["volumes"]
    assert volume["secret"]["collect-url"] == base64.b64encode(sas.encode()).decode()
    assert b"S3CRET" not in put.body  # only base64 in the secret volume


def test_telemetry_gets_its_connection_string_as_a_secret_file_not_a_variable(
    aci: FakeAci, transport: Any, credential: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "InstrumentationKey=0000;IngestionEndpoint=https://ingest.example/;S3CRET"
    with caplog.at_level(logging.DEBUG):
        put, props, env = _deploy_qa(transport, credential, appinsights_connection_string=secret)
    path = "/mnt/secrets/appinsights-connection-string"
    assert env["SCORING_APPINSIGHTS_CONNECTION_STRING_FILE"] == path
    assert "SCORING_APPINSIGHTS_CONNECTION_STRING" not in env
    (volume,) = props["volumes"]
    assert volume["secret"]["appinsights-connection-string"] == (
        base64.b64encode(secret.encode()).decode()
    )
    assert b"S3CRET" not in put.body  # only base64 in the secret volume
    assert "S3CRET" not in caplog.text


def test_without_telemetry_the_group_gets_no_connection_string(
    aci: FakeAci, transport: Any, credential: Any
) -> None:
    put, _, _ = _deploy_qa(transport, credential)
    assert b"APPINSIGHTS" not in put.body and b"appinsights" not in put.body
