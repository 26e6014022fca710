"""Backends: the data lake, compute and model registry behind ``backends.base``'s interfaces.

``get_backends(settings)`` is the one place that picks implementations for a profile.
Adapters are imported inside it, so importing this package loads no cloud SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from backends.base import Compute, DataLake, ModelRegistry

if TYPE_CHECKING:
    from mlops.settings import Settings

__all__ = ["Backends", "get_backends"]


@dataclass(frozen=True)
class Backends:
    """The three backends a flow works with."""

    datalake: DataLake
    compute: Compute
    registry: ModelRegistry


def get_backends(settings: Settings) -> Backends:
    """Build the backends of ``settings.profile``.

    Nothing is contacted here: clients connect on first use.

    Args:
        settings: The project settings.

    Returns:
        ``local``: Azurite (or ``MLOPS_BLOB_CONNECTION_STRING``), training as local
        processes, a SQLite registry under the state folder.

    Raises:
        NotImplementedError: ``azure`` (its compute and registry adapters are not written yet).
    """
    if settings.profile == "azure":
        return _azure_backends(settings)

    from backends.blob_datalake import BlobDataLake
    from backends.local.compute import SubprocessCompute
    from backends.local.registry import LocalModelRegistry

    datalake = BlobDataLake(settings.blob_connection)
    return Backends(
        datalake=datalake,
        compute=SubprocessCompute(settings.jobs_path, datalake),
        registry=LocalModelRegistry(settings.registry_path),
    )


def _azure_backends(settings: Settings) -> Backends:
    """The Azure profile: Blob Storage, Azure ML jobs and the Azure ML model registry."""
    # The data lake is the same class as locally, pointed at the storage account.
    # Wire it here together with backends.azure's compute and registry adapters.
    raise NotImplementedError(
        "profile 'azure': the Azure ML compute and registry adapters (backends.azure) are not "
        "written yet; the data lake would be BlobDataLake(account_url="
        f"{settings.azure.storage_account_url!r}) with DefaultAzureCredential"
    )
