"""The ``mlops-aci`` work pool's job template, rendered the way prefect-azure's worker renders
it (``from_template_and_values`` + ``prepare_for_flow_run``): the flows' image by digest, the
worker identity for the group and its image pull, region and subnet from the settings, and no
secret anywhere in what would be sent to Azure."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any, cast

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_KEY, temporary_settings
from prefect_azure.workers.container_instance import AzureContainerJobConfiguration
from pydantic import SecretStr

from backends.azure.aci_pool import WORKER_TYPE, base_job_template
from core.settings import AzureSettings, Settings, load_settings
from core.work_pools import ACI_POOL, POOL_TYPES, WorkPoolError, aci_job_template, template_path

SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-mlops"
WORKER = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-worker"
SUBNET = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/flows"
IMAGE = "crmlops.azurecr.io/mlops-flows@sha256:" + "ab" * 32
WORKER_KEY = "pnu_" + "k" * 36  # what a worker signed in to Prefect Cloud would hold
CONNECTION = "DefaultEndpointsProtocol=https;AccountName=stlake;AccountKey=" + "c2VjcmV0" * 8
# Values that must never reach a container group, and the shapes of secrets in general.
SECRET_SHAPES = [
    re.compile(r"AccountKey=", re.I),
    re.compile(r"SharedAccessSignature|[?&]sig=", re.I),
    re.compile(r"\bpnu_\w+"),
    re.compile(r"client_secret|password", re.I),
]
SECRET_NAMES = {"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "MLOPS_BLOB_CONNECTION_STRING"}


def azure_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        subscription_id=SUB,
        resource_group="rg-mlops",
        workspace="mlw-mlops",
        storage_account_url="https://stlake.blob.core.windows.net",
        registry="crmlops.azurecr.io",
        location="westeurope",
        key_vault_url="https://kvmlops.vault.azure.net/",
        worker_identity=WORKER,
        worker_client_id="11111111-2222-3333-4444-555555555555",
        flow_image=IMAGE,
        flow_subnet_id=SUBNET,
    )
    azure = AzureSettings(**{**values, **overrides})
    return load_settings(profile="azure", work_pool=ACI_POOL, azure=azure)


def render(template: dict[str, Any]) -> dict[str, Any]:
    """The container group's ARM resource as the worker would deploy it for one flow run."""

    async def configure() -> AzureContainerJobConfiguration:
        # The template names no block and no variable, so the API client is never used: one
        # that fails on any use proves it (and keeps the unit test off the network).
        return await AzureContainerJobConfiguration.from_template_and_values(
            template, {}, client=cast(Any, object())
        )

    config = asyncio.run(configure())
    flow_run = FlowRun(id=uuid.uuid4(), name="brave-otter", flow_id=uuid.uuid4())
    with temporary_settings({PREFECT_API_KEY: WORKER_KEY}):
        config.prepare_for_flow_run(flow_run)
    return {"config": config, "arm": config.arm_template}


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *strings(v)]]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [str(value)]


def test_the_versioned_template_is_the_generated_one() -> None:
    assert POOL_TYPES[ACI_POOL] == WORKER_TYPE == "azure-container-instance"
    assert json.loads(template_path(ACI_POOL).read_text()) == base_job_template()


def test_a_flow_run_group_runs_the_pinned_image_as_the_worker_identity() -> None:
    rendered = render(aci_job_template(azure_settings()))
    (group,) = rendered["arm"]["resources"]
    (container,) = group["properties"]["containers"]
    assert container["properties"]["image"] == IMAGE
    assert group["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {WORKER: {}}}
    assert group["properties"]["imageRegistryCredentials"] == [
        {"server": "crmlops.azurecr.io", "identity": WORKER}
    ]
    assert group["properties"]["subnetIds"] == [{"id": SUBNET}]
    assert rendered["arm"]["parameters"]["location"]["defaultValue"] == "westeurope"
    command = container["properties"]["command"]
    assert command[0] == "/opt/mlops/entrypoint" and "prefect" in " ".join(command[1:])
    env = {e["name"]: e.get("value") for e in container["properties"]["environmentVariables"]}
    assert env["AZURE_CLIENT_ID"] == "11111111-2222-3333-4444-555555555555"
    assert env["MLOPS_PROFILE"] == "azure"
    assert env["MLOPS_AZURE__KEY_VAULT_URL"] == "https://kvmlops.vault.azure.net/"
    assert env["MLOPS_AZURE__PREFECT_CREDENTIAL_SECRET"] == "prefect-api-credential"
    assert env["PREFECT__FLOW_RUN_ID"]  # the worker's own variables still arrive


def test_nothing_secret_reaches_the_container_group() -> None:
    """The worker's Prefect key and a configured connection string stay out of every value."""
    settings = azure_settings().model_copy(update={"blob_connection_string": SecretStr(CONNECTION)})
    rendered = render(aci_job_template(settings))
    (container,) = rendered["arm"]["resources"][0]["properties"]["containers"]
    variables = container["properties"]["environmentVariables"]
    # The credential variables are there, empty: the image's entrypoint fills them from Key Vault.
    blanked = {e["name"]: e.get("secureValue", e.get("value")) for e in variables}
    assert {k: v for k, v in blanked.items() if k in SECRET_NAMES} == {
        "PREFECT_API_KEY": "",
        "PREFECT_API_AUTH_STRING": "",
    }
    template = aci_job_template(settings)
    defaults = {k: p.get("default") for k, p in template["variables"]["properties"].items()}
    values = strings(rendered["arm"]) + strings(defaults)
    leaks = [v for v in values for shape in SECRET_SHAPES if shape.search(v)]
    assert leaks == []
    assert WORKER_KEY not in json.dumps(rendered["arm"])


def test_the_scan_finds_a_leak() -> None:
    """Without the template's blanked credentials the worker's key would reach the group."""
    template = aci_job_template(azure_settings())
    template["variables"]["properties"]["env"]["default"].pop("PREFECT_API_KEY")
    (container,) = render(template)["arm"]["resources"][0]["properties"]["containers"]
    leaked = [e for e in container["properties"]["environmentVariables"] if e.get("secureValue")]
    assert leaked == [{"name": "PREFECT_API_KEY", "secureValue": WORKER_KEY}]
    assert any(shape.search(WORKER_KEY) for shape in SECRET_SHAPES)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"flow_image": "crmlops.azurecr.io/mlops-flows:latest"}, "by digest"),
        ({"flow_image": ""}, "MLOPS_AZURE__FLOW_IMAGE"),
        ({"worker_identity": "", "worker_client_id": ""}, "MLOPS_AZURE__WORKER_IDENTITY"),
        # Outside the network the release flow cannot reach QA's private IP.
        ({"flow_subnet_id": ""}, "MLOPS_AZURE__FLOW_SUBNET_ID"),
    ],
)
def test_an_incomplete_estate_is_refused_by_name(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(WorkPoolError, match=message):
        aci_job_template(azure_settings(**overrides))
