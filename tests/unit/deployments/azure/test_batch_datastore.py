"""The Azure ML datastore batch scoring writes through (modules/batch-datastore.bicep): a blob
datastore over the lake's batch container with no stored credential, wired by main.bicep to
the lake and to the ``MLOPS_AZURE__BATCH_DATASTORE`` output, and usable by the identities the
job and the flows run as."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import AzureSettings, Settings

from .bicep import TEMPLATES, parsed, role_assignments

BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # Storage Blob Data Contributor
# The resource type and the fields an AzureBlobDatastore takes at this api-version, as
# Azure/azure-rest-api-specs defines them (specification/machinelearningservices/
# resource-manager/Microsoft.MachineLearningServices/stable/2024-04-01/mfe.json: AzureBlobDatastore,
# AzureDatastore, Datastore, ResourceBase; credentials: NoneDatastoreCredentials).
DATASTORE_TYPE = "Microsoft.MachineLearningServices/workspaces/datastores"
API_VERSION = "2024-04-01"
SPEC_FIELDS = {
    *("accountName", "containerName", "endpoint", "protocol", "serviceDataAccessAuthIdentity"),
    *("resourceGroup", "subscriptionId"),  # AzureDatastore
    *("credentials", "datastoreType"),  # Datastore (isDefault is read-only)
    *("description", "properties", "tags"),  # ResourceBase
}
SERVICE_IDENTITIES = {"None", "WorkspaceSystemAssignedIdentity", "WorkspaceUserAssignedIdentity"}


def ref(node: Any) -> str:
    """A Bicep reference as written (``lake.outputs.name``), from pycep's operator tree."""
    if isinstance(node, str):
        return node
    if "function" in node:  # environment().suffixes
        function = node["function"]
        return f"{function['type']}().{function['property_name']}"
    operands = node["operator"]["operands"]
    return f"{ref(operands['operand_1'])}.{ref(operands['operand_2'])}"


@pytest.fixture(scope="module")
def module() -> dict[str, Any]:
    return parsed(TEMPLATES / "modules" / "batch-datastore.bicep")


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return parsed(TEMPLATES / "main.bicep")


def test_it_is_an_identity_based_blob_datastore_of_the_workspace(module: dict[str, Any]) -> None:
    resources = module["resources"]
    datastore = resources["datastore"]
    assert (datastore["type"], datastore["api_version"]) == (DATASTORE_TYPE, API_VERSION)
    assert datastore["config"]["parent"] == "workspace" and resources["workspace"]["existing"]
    properties = datastore["config"]["properties"]
    assert set(properties) <= SPEC_FIELDS, set(properties) - SPEC_FIELDS
    assert properties["datastoreType"] == "AzureBlob"
    # No key, no SAS: the job and the flows sign in with their own identities.
    assert properties["credentials"] == {"credentialsType": "None"}
    assert "secrets" not in str(properties).lower() and "key" not in str(properties).lower()
    # The workspace's own identity is not used (it holds no role on the lake).
    assert properties["serviceDataAccessAuthIdentity"] == "None"
    assert properties["serviceDataAccessAuthIdentity"] in SERVICE_IDENTITIES
    assert (properties["accountName"], properties["containerName"]) == ("lakeName", "containerName")
    assert properties["protocol"] == "https"
    assert ref(properties["endpoint"]) == "environment().suffixes.storage"  # any cloud
    assert module["parameters"]["name"]["default"] == AzureSettings().batch_datastore
    assert ref(module["outputs"]["name"]["value"]) == "datastore.name"


def test_main_binds_it_to_the_lakes_batch_container_and_outputs_the_setting(
    main: dict[str, Any],
) -> None:
    params = main["modules"]["batchDatastore"]["config"]["params"]
    assert {name: ref(value) for name, value in params.items()} == {
        "workspaceName": "workspace.outputs.workspaceName",
        "lakeName": "lake.outputs.name",
        "containerName": "lake.outputs.batchContainer",
    }
    output = main["outputs"]["MLOPS_AZURE__BATCH_DATASTORE"]
    assert ref(output["value"]) == "batchDatastore.outputs.name"
    lake = parsed(TEMPLATES / "modules" / "lake.bicep")
    assert ref(lake["outputs"]["batchContainer"]["value"]) == "batchContainer"
    container = lake["variables"]["batchContainer"]["value"]
    assert "batchContainer" in lake["variables"]["containers"]["value"]  # it is created
    assert container == Settings().batch_container  # the container the flows use


def test_the_job_and_flow_identities_may_write_that_container(main: dict[str, Any]) -> None:
    """The job writes as the compute cluster's identity, the flow copies the input and reads
    the lineage as the worker's: both hold Blob Data Contributor on the very account the
    datastore names (a role on the account covers its containers)."""
    on_lake = {
        assignment.name
        for assignment in role_assignments([TEMPLATES / "modules" / "roles.bicep"])
        if (assignment.role, assignment.scope) == (BLOB_CONTRIBUTOR, "lake")
    }
    assert on_lake == {"computeOnLake", "workerOnLake"}
    roles = {k: ref(v) for k, v in main["modules"]["roles"]["config"]["params"].items()}
    assert roles["lakeName"] == "lake.outputs.name"  # the datastore's account
    assert roles["computePrincipalId"] == "identities.outputs.computePrincipalId"
    assert roles["workerPrincipalId"] == "identities.outputs.workerPrincipalId"
    # ... and the cluster runs as that compute identity.
    compute = main["modules"]["compute"]["config"]["params"]
    assert ref(compute["identityId"]) == "identities.outputs.computeId"
