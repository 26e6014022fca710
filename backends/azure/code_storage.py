"""Where the ``mlops-aci`` choice keeps flow code: a prefect-azure credentials block.

prefect.yaml's ``definitions.aci`` push and pull steps
(``prefect_azure.deployments.steps.push_to_azure_blob_storage`` /
``pull_from_azure_blob_storage``) take a ``credentials`` mapping with either
``connection_string`` or ``account_url`` (then ``DefaultAzureCredential``). They read it from
the ``AzureBlobStorageCredentials`` block ``mlops-code``, resolved by Prefect when a step runs,
so no credential is written into a deployment. The profile decides what the block holds:

- ``azure`` (no ``MLOPS_BLOB_CONNECTION_STRING``): the lake's account URL only. The publisher
  signs in as itself (``az login``, CI's OIDC), a flow run as the container group's managed
  identity (``AZURE_CLIENT_ID``); the lake accepts Entra ID only.
- ``local`` (or a connection string set): the connection string, e.g. Azurite's.
"""

from __future__ import annotations

from prefect_azure.credentials import AzureBlobStorageCredentials
from pydantic import SecretStr

from backends.blob_datalake import BlobDataLake
from core.settings import Settings
from core.work_pools import CODE_STORAGE_BLOCK


def code_storage_block(settings: Settings) -> AzureBlobStorageCredentials:
    """The credentials block for this profile (not saved)."""
    if settings.profile == "azure" and settings.blob_connection_string is None:
        return AzureBlobStorageCredentials(account_url=settings.azure.storage_account_url)
    return AzureBlobStorageCredentials(connection_string=SecretStr(settings.blob_connection))


def save_code_storage(settings: Settings) -> AzureBlobStorageCredentials:
    """Save the block as ``mlops-code`` on the current Prefect API and make sure the code
    container exists where the project owns the account (Azure: ``lake.bicep`` creates it)."""
    block = code_storage_block(settings)
    if block.connection_string is not None:
        BlobDataLake(block.connection_string.get_secret_value()).ensure_containers(
            settings.code_container
        )
    block.save(CODE_STORAGE_BLOCK, overwrite=True)
    return block
