"""Backends: the data lake, compute and model registry behind ``core.interfaces``'s interfaces.

``get_backends(settings)`` is the one place that picks implementations for a profile.
Adapters are imported inside it, so importing this package loads no cloud SDK.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.interfaces import (
    BatchScoring,
    Compute,
    DataLake,
    DeploymentTarget,
    ImageBuilder,
    ModelRegistry,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from backends.collect_sas import Collection
    from core.settings import Settings

__all__ = [
    "Backends",
    "ReleaseBackends",
    "get_backends",
    "get_batch_scoring",
    "get_release_backends",
]

log = logging.getLogger(__name__)


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
        processes, a SQLite registry under the state folder. ``azure``: the storage
        account, Azure ML command jobs and the workspace model registry.
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
    from pathlib import Path

    from azure.identity import DefaultAzureCredential

    from backends.azure.client import workspace_client
    from backends.azure.compute import AmlCompute
    from backends.azure.registry import AmlModelRegistry
    from backends.blob_datalake import BlobDataLake

    # One credential (environment, managed identity or Azure CLI) for storage and Azure ML;
    # building it contacts nothing, tokens are fetched on first use.
    credential = DefaultAzureCredential()
    # The data lake is the same class as locally, pointed at the storage account unless a
    # connection string was given.
    if settings.blob_connection_string is not None:
        datalake = BlobDataLake(settings.blob_connection_string.get_secret_value())
    else:
        datalake = BlobDataLake(
            account_url=settings.azure.storage_account_url, credential=credential
        )
    # One client for compute and registry, built on first use: azure.ai.ml takes seconds
    # to import, and commands that only read the data lake never need it.
    ml_client = workspace_client(settings.azure, credential)
    repo_root = Path(__file__).resolve().parent.parent  # holds the training package
    return Backends(
        datalake=datalake,
        compute=AmlCompute(ml_client, settings.azure, code_dir=repo_root),
        registry=AmlModelRegistry(ml_client),
    )


@dataclass(frozen=True)
class ReleaseBackends:
    """Where scoring services are built and run. ``builder`` is None when the target runs the
    model folder directly (the process target)."""

    kind: str
    builder: ImageBuilder | None
    target: DeploymentTarget


def get_release_backends(settings: Settings, *, start_engine: bool = True) -> ReleaseBackends:
    """Build the release backends: Docker when an engine runs or can be started, else processes.
    In the Azure profile: images built by the local engine and pushed to ACR (or built by ACR
    itself, ``MLOPS_AZURE__IMAGE_BUILD``), QA on ACI, production on AKS.

    Unlike ``get_backends`` this may start the project's Docker engine (a local service);
    ``start_engine=False`` only uses an engine that already runs (for read-only commands).
    """
    if settings.profile == "azure":
        return _azure_release_backends(settings, start_engine=start_engine)

    from backends.local.process_target import ProcessTarget

    ports = {"qa": settings.qa_port, "production": settings.production_port}
    collection = _local_collection(settings)
    if settings.release_target in ("auto", "docker"):
        from backends.local.dockerd import DockerEngine, DockerEngineError

        candidates = [settings.docker_host] if settings.docker_host else None
        engine = DockerEngine(settings.docker_path, candidates=candidates)
        try:
            if not start_engine and engine.find() is None:
                raise DockerEngineError("the Docker engine is not running")
            host = engine.ensure()
        except DockerEngineError as exc:
            if settings.release_target == "docker":
                raise
            log.warning("no Docker engine (%s): scoring services run as processes", exc)
        else:
            import docker

            from backends.local.docker_image import DockerImageBuilder
            from backends.local.docker_target import DockerTarget

            return ReleaseBackends(
                kind="docker",
                builder=DockerImageBuilder(
                    host,
                    settings.docker_path / "cache",
                    base_image=settings.base_image,
                    telemetry=_appinsights(settings) is not None,
                ),
                target=DockerTarget(
                    lambda: docker.DockerClient(base_url=host),
                    settings.targets_path / "docker",
                    ports,
                    collection=collection,
                    scrape_dir=settings.scrape_targets_path,
                    appinsights_connection_string=_appinsights(settings),
                ),
            )
    return ReleaseBackends(
        kind="process",
        builder=None,
        target=ProcessTarget(
            settings.targets_path / "process",
            ports,
            collection=collection,
            scrape_dir=settings.scrape_targets_path,
            appinsights_connection_string=_appinsights(settings),
        ),
    )


def _local_collection(settings: Settings) -> Collection | None:
    """Replicas write what they score to the lake's collected container with a SAS signed
    by the account key of the connection string (Azurite's, locally)."""
    if settings.collect_sample == 0:
        return None
    from functools import partial

    from backends.collect_sas import Collection, container_sas_url

    issue = partial(
        container_sas_url,
        settings.blob_connection,
        settings.collected_container,
        settings.collect_sas_days,
    )
    return Collection(issue, settings.collect_sample, settings.collect_window_seconds)


def _azure_collection(settings: Settings, credential: TokenCredential) -> Collection | None:
    """QA's replicas write to the collected container with a user-delegation SAS: signed by
    a key Azure issues to the release's identity, no account key anywhere (untested against
    Azure: deployments/README.md)."""
    if settings.collect_sample == 0:
        return None
    from functools import partial

    from backends.collect_sas import Collection, container_sas_url, user_delegation_sas_url

    if settings.blob_connection_string is not None:
        issue = partial(
            container_sas_url,
            settings.blob_connection_string.get_secret_value(),
            settings.collected_container,
            settings.collect_sas_days,
        )
    else:
        issue = partial(
            user_delegation_sas_url,
            settings.azure.storage_account_url,
            credential,
            settings.collected_container,
            settings.collect_sas_days,
        )
    return Collection(issue, settings.collect_sample, settings.collect_window_seconds)


def _appinsights(settings: Settings) -> str | None:
    """The connection string scoring replicas export telemetry to (a secret each target hands
    over as a file or Key Vault reference); its presence also puts the exporter in the image."""
    secret = settings.appinsights_connection_string
    return (secret.get_secret_value() or None) if secret is not None else None


def _azure_release_backends(settings: Settings, *, start_engine: bool) -> ReleaseBackends:
    """ACR for images, ACI (private, in the QA subnet) for QA, an Azure ML online endpoint
    for production: Kubernetes (AKS attached to the workspace) or managed, by one setting.

    The image is built on this machine's engine, exactly as locally, and pushed to ACR with
    the Entra ID identity, or built from the same context by an ACR Tasks run (no engine: flow
    runs on the ACI pool); ACI pulls it as the QA identity, AKS with the cluster's own. Keys
    live in the project's Key Vault: the QA key is created there on the first release, and
    production's endpoint keys are mirrored there for secret injection.
    """
    from core.interfaces import BackendError

    azure = settings.azure
    if azure.release_missing():
        raise BackendError("a release in Azure needs: " + ", ".join(azure.release_missing()))

    from azure.identity import DefaultAzureCredential
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient

    from backends.azure.aci import AciTarget
    from backends.azure.aks import AksOnlineTarget
    from backends.azure.client import workspace_client
    from backends.azure.keyvault import KeyVaultSecrets
    from backends.azure.online_spec import Autoscale
    from backends.routed import TargetsByEnvironment

    credential = DefaultAzureCredential()
    vault = KeyVaultSecrets.from_url(azure.key_vault_url, credential)
    collection = _azure_collection(settings, credential)
    qa = AciTarget(
        ContainerInstanceManagementClient(credential, azure.subscription_id),
        azure.resource_group,
        azure.location,
        keys=lambda environment: vault.get_or_create(azure.qa_api_key_secret),
        subnet_id=azure.qa_subnet_id,
        name_prefix=azure.endpoint_prefix,
        registry_server=azure.registry,
        registry_identity=azure.qa_identity,
        collection=collection,
        appinsights_connection_string=_appinsights(settings),
    )
    production = AksOnlineTarget(
        workspace_client(azure, credential),
        azure.kubernetes_compute,
        vault,
        identity=azure.endpoint_identity,
        name_prefix=azure.endpoint_prefix,
        instance_type=azure.online_instance_type,
        min_replicas=settings.production_replicas,
        kind=azure.production_target,
        collection=collection,
        appinsights_connection_string=_appinsights(settings),
        autoscale=Autoscale(
            min_instances=azure.autoscale_min_instances,
            max_instances=azure.autoscale_max_instances,
            target_utilization=azure.autoscale_target_utilization,
            polling_seconds=azure.autoscale_polling_seconds,
        ),
    )
    return ReleaseBackends(
        kind="azure",
        builder=_azure_image_builder(settings, credential, start_engine=start_engine),
        target=TargetsByEnvironment({"qa": qa, "production": production}),
    )


def _azure_image_builder(
    settings: Settings, credential: TokenCredential, *, start_engine: bool
) -> ImageBuilder:
    """The scoring image's builder, by ``MLOPS_AZURE__IMAGE_BUILD`` (core/settings.py says why
    ``auto`` follows the work pool). Both push to ``MLOPS_AZURE__REGISTRY`` and return a
    digest reference; only ``docker`` needs (and may start) a Docker engine."""
    from backends.local.docker_image import DockerImageBuilder

    azure = settings.azure
    cache = settings.docker_path / "cache"
    telemetry = _appinsights(settings) is not None
    mode = azure.image_build
    if mode == "auto":
        mode = "acr-task" if settings.work_pool == "mlops-aci" else "docker"
    if mode == "acr-task":
        from backends.azure.acr_task import AcrTaskImageBuilder, management_client

        return AcrTaskImageBuilder(
            DockerImageBuilder("", cache, telemetry=telemetry),  # the context only: no engine
            management_client(credential, azure.subscription_id),
            azure.resource_group,
            azure.registry,
            base_image=settings.base_image,
        )

    from backends.azure.acr import AcrImageBuilder
    from backends.local.dockerd import DockerEngine

    engine = DockerEngine(
        settings.docker_path, candidates=[settings.docker_host] if settings.docker_host else None
    )
    # Read-only commands (start_engine=False) never build: an engine is not needed for them.
    host = engine.ensure() if start_engine else (engine.find() or "")
    return AcrImageBuilder(
        DockerImageBuilder(host, cache, base_image=settings.base_image, telemetry=telemetry),
        azure.registry,
        credential=credential,
    )


def get_batch_scoring(settings: Settings, backends: Backends) -> BatchScoring:
    """The batch-scoring backend of ``settings.profile``: ``training.batch_score`` as a local
    process job, or as an Azure ML parallel job. Contacts nothing."""
    if settings.profile == "azure":
        from pathlib import Path

        from azure.identity import DefaultAzureCredential

        from backends.azure.batch import AmlBatchScoring
        from backends.azure.client import workspace_client

        return AmlBatchScoring(
            workspace_client(settings.azure, DefaultAzureCredential()),
            settings.azure,
            backends.datalake,
            code_dir=Path(__file__).resolve().parent.parent,
            container=settings.batch_container,
        )
    from backends.local.batch import SubprocessBatchScoring

    return SubprocessBatchScoring(settings.jobs_path, backends.datalake)
