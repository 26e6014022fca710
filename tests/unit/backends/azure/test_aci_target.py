"""AciTarget against a fake ACI API: the container group PUTs the real SDK sends."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

import pytest
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from backends.azure.aci import AciTarget
from core.interfaces import BackendError, DeploymentTarget, ReleaseSpec

SUB = "00000000-1111-2222-3333-444444444444"
PROVIDER = "providers/Microsoft.ContainerInstance"
GROUPS = rf"/subscriptions/{SUB}/resourceGroups/rg-release/{PROVIDER}/containerGroups"
KEY = "k3y-from-key-vault-0123456789"
QA_IDENTITY = (
    f"/subscriptions/{SUB}/resourceGroups/rg-release/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-qa"
)
V1 = ReleaseSpec("diabetes-ridge", "1", "a" * 64, image="acr.azurecr.io/diabetes-scoring:1")
V2 = ReleaseSpec("diabetes-ridge", "2", "b" * 64, image="acr.azurecr.io/diabetes-scoring:2")


class FakeAci:
    """Container groups as ARM keeps them; a PUT is accepted, then finishes on the first poll."""

    def __init__(self, transport: Any) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.running = True
        self._transport = transport
        transport.route("GET", GROUPS + r"/[^/?]+\?", self._get)
        transport.route("PUT", GROUPS + r"/[^/?]+\?", self._put)
        transport.route("DELETE", GROUPS + r"/[^/?]+\?", self._delete)
        transport.route("GET", r"/operations/aci-", transport.Reply(200, {"status": "Succeeded"}))

    @staticmethod
    def _name(request: Any) -> str:
        return str(re.search(r"/containerGroups/([^/?]+)", request.url)[1])  # type: ignore[index]

    def _get(self, request: Any) -> Any:
        group = self.groups.get(self._name(request))
        if group is None:
            return self._transport.Reply(
                404, {"error": {"code": "ResourceNotFound", "message": "no"}}
            )
        return group

    def _put(self, request: Any) -> Any:
        name = self._name(request)
        body = request.json()
        props = body["properties"]
        label = props["ipAddress"]["dnsNameLabel"]
        props["ipAddress"]["fqdn"] = f"{label}.westeurope.azurecontainer.io"
        props["provisioningState"] = "Succeeded"
        state = "Running" if self.running else "Waiting"
        for container in props["containers"]:
            container["properties"]["instanceView"] = {"currentState": {"state": state}}
            for var in container["properties"].get("environmentVariables", []):
                var.pop("secureValue", None)  # Azure never returns secure values
        for volume in props.get("volumes") or []:
            volume.pop("secret", None)  # nor secret volumes' content
        self.groups[name] = {"id": f"{GROUPS}/{name}", "name": name, **body}
        pending = {**body, "properties": {**props, "provisioningState": "Pending"}}
        poll = f"https://management.azure.com/operations/aci-{name}"
        return self._transport.Reply(
            201, pending, {"Azure-AsyncOperation": poll, "Retry-After": "0"}
        )

    def _delete(self, request: Any) -> Any:
        self.groups.pop(self._name(request), None)
        return self._transport.Reply(200, None)


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
    assert props["ipAddress"]["dnsNameLabel"] == "diabetes-scoring-qa"
    assert props["ipAddress"]["ports"] == [{"protocol": "TCP", "port": 5001}]
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
    assert endpoint.url == "http://diabetes-scoring-qa.westeurope.azurecontainer.io:5001"
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
    slow = AciTarget(client, "rg-release", "westeurope", keys=lambda e: KEY, timeout=0.5)
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
