"""``ImageBuilder`` that builds the scoring image inside ACR (an ACR Tasks quick run).

A flow run on the ACI pool (``MLOPS_WORK_POOL=mlops-aci``) is a container group with no
Docker engine, so ``AcrImageBuilder`` (build locally, push) cannot work there. This builder
sends the same build context to the registry and lets ACR build and push it, as
``az acr build`` does:

1. ``POST .../registries/<name>/listBuildSourceUploadUrl``: a write SAS URL for one blob
   and its ``relativePath``.
2. Upload the context as a ``.tar.gz`` to that URL (azure-storage-blob ``BlobClient``).
3. ``POST .../registries/<name>/scheduleRun`` with a ``DockerBuildRequest`` whose
   ``sourceLocation`` is the relative path, ``isPushEnabled`` and ``linux/amd64``.
4. ``GET .../runs/<runId>`` until the run ends; the pushed digest is in ``outputImages``.
   A run that did not succeed raises with the tail of its log (``listLogSasUrl``).

The context is the one ``DockerImageBuilder`` assembles (Dockerfile, a wheelhouse pinned to
the model's ``run.json``, the scoring package, the model folder): the image ACR builds holds
the same files as a local build. Unlike locally, ``BASE_IMAGE`` defaults to the Dockerfile's
``python:3.11-slim``, which ACR pulls itself.

The identity needs "Container Registry Tasks Contributor" on the registry (scheduleRun,
listBuildSourceUploadUrl, runs read and listLogSasUrl); the push is done by the run.

The management client is built with api-version ``2025-03-01-preview`` (``API_VERSION``):
azure-mgmt-containerregistry 14's default (``2025-04-01``) has no Tasks operations.
"""

from __future__ import annotations

import logging
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import HttpTransport
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.v2025_03_01_preview.models import (
    Argument,
    DockerBuildRequest,
    PlatformProperties,
)
from azure.storage.blob import BlobClient

from backends.local.docker_image import DockerImageBuilder, ImageBuildError, image_tag
from training.artifacts import MODEL_FILE, sha256_file

logger = logging.getLogger(__name__)

API_VERSION = "2025-03-01-preview"  # the newest the pinned SDK has with ACR Tasks
DONE = {"Succeeded", "Failed", "Canceled", "Error", "Timeout"}
_LOG_LINES = 30  # lines of the run's log quoted in an error


def registry_name(login_server: str) -> str:
    """The ARM name of a registry from its login server (``myacr.azurecr.io`` -> ``myacr``).

    ACR names are letters and digits only; a login server with a domain-name-label hash
    (``myacr-abc123.azurecr.io``) adds it after a dash, which is dropped.
    """
    return login_server.split(".", 1)[0].split("-", 1)[0]


class AcrTaskImageBuilder:
    """Builds and pushes the scoring image with an ACR Tasks run (``ImageBuilder``).

    ``build`` returns ``<login_server>/<repository>@sha256:...``, as ``AcrImageBuilder``
    does: the digest the run pushed, never a tag.

    Args:
        context_builder: Provides the wheelhouse and assembles the build context (its
            Docker engine is never contacted).
        client: The registry's management client, ``API_VERSION`` (see ``management_client``).
        resource_group: The registry's resource group.
        login_server: The registry host, e.g. ``myacr.azurecr.io``.
        base_image: ``BASE_IMAGE`` build argument; None keeps the Dockerfile's default.
        poll_seconds: Wait between two reads of the run.
        timeout_seconds: The run's own timeout (ACR stops it); we wait a minute longer.
        blob_transport: azure-core transport for the SAS upload and log download (tests).
        sleep: Waits between polls (tests).
    """

    def __init__(
        self,
        context_builder: DockerImageBuilder,
        client: ContainerRegistryManagementClient,
        resource_group: str,
        login_server: str,
        *,
        base_image: str | None = None,
        poll_seconds: float = 5.0,
        timeout_seconds: int = 3600,
        blob_transport: HttpTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        login_server = login_server.strip().rstrip("/")
        if not login_server or "/" in login_server:
            raise ValueError(f"login_server must be a host name (x.azurecr.io): {login_server!r}")
        self.context_builder = context_builder
        self.client = client
        self.resource_group = resource_group
        self.login_server = login_server
        self.registry = registry_name(login_server)
        self.base_image = base_image
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self._blob_transport = blob_transport
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"AcrTaskImageBuilder({self.login_server!r})"

    def build(
        self, model_name: str, model_version: str, artifact_dir: Path, code_version: str
    ) -> str:
        """Upload the build context, run the build in ACR, return the pushed digest reference.

        Raises:
            ImageBuildError: The model folder is incomplete, the wheelhouse cannot be made,
                a registry call failed, or the run did not succeed (with its log's tail).
        """
        artifact_dir = artifact_dir.resolve()
        model_file = artifact_dir / MODEL_FILE
        if not model_file.is_file():
            raise ImageBuildError(f"{model_file} is missing: is {artifact_dir} a model folder?")
        wheels = self.context_builder.wheelhouse(artifact_dir)
        name = image_tag(  # repository:tag
            model_name, model_version, code_version, telemetry=self.context_builder.telemetry
        )
        args = {
            "MODEL_NAME": model_name,
            "MODEL_VERSION": model_version,
            "MODEL_SHA256": sha256_file(model_file),
            "CODE_VERSION": code_version,
        }
        if self.base_image:
            args["BASE_IMAGE"] = self.base_image
        try:
            with tempfile.TemporaryDirectory(prefix="mlops-acr-") as scratch:
                context = Path(scratch) / "context"
                context.mkdir()
                DockerImageBuilder._assemble(context, wheels, artifact_dir)
                source = self._upload(context, Path(scratch) / "context.tar.gz")
            run = self.client.registries.schedule_run(
                self.resource_group, self.registry, self._request(name, source, args)
            )
            logger.info("ACR %s builds %s (run %s)", self.registry, name, run.run_id)
            run = self._wait(run)
        except AzureError as exc:
            raise ImageBuildError(f"ACR {self.registry} cannot build {name}: {exc}") from None
        return self._digest_reference(run, name)

    # ---------------------------------------------------------------- steps
    def _upload(self, context: Path, archive: Path) -> str:
        """Pack ``context`` as ``.tar.gz``, upload it to a fresh SAS URL; its relative path."""
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(context.iterdir()):
                tar.add(path, arcname=path.name)
        upload = self.client.registries.get_build_source_upload_url(
            self.resource_group, self.registry
        )
        if not upload.upload_url or not upload.relative_path:
            raise ImageBuildError(f"ACR {self.registry} gave no build source upload URL")
        blob = BlobClient.from_blob_url(upload.upload_url, transport=self._blob_transport)
        with blob, archive.open("rb") as data:
            blob.upload_blob(data, overwrite=True)
        logger.info("uploaded the build context (%d bytes)", archive.stat().st_size)
        return str(upload.relative_path)

    def _request(self, name: str, source: str, args: dict[str, str]) -> DockerBuildRequest:
        return DockerBuildRequest(
            image_names=[name],
            is_push_enabled=True,
            no_cache=False,
            docker_file_path="Dockerfile",
            source_location=source,
            platform=PlatformProperties(os="Linux", architecture="amd64"),
            arguments=[Argument(name=k, value=v, is_secret=False) for k, v in args.items()],
            timeout=self.timeout_seconds,
            is_archive_enabled=False,
        )

    def _wait(self, run: Any) -> Any:
        deadline = time.monotonic() + self.timeout_seconds + 60
        while str(run.status) not in DONE:
            if time.monotonic() > deadline:
                raise ImageBuildError(
                    f"ACR run {run.run_id} did not end within {self.timeout_seconds} s "
                    f"(status {run.status})"
                )
            self._sleep(self.poll_seconds)
            run = self.client.runs.get(self.resource_group, self.registry, run.run_id)
        if str(run.status) != "Succeeded":
            raise ImageBuildError(
                f"ACR run {run.run_id} ended {run.status}"
                + (f" ({run.run_error_message})" if run.run_error_message else "")
                + f"; the end of its log:\n{self._log_tail(run.run_id)}"
            )
        return run

    def _log_tail(self, run_id: str) -> str:
        """The last lines of the run's log (never the SAS URL), or why there are none."""
        try:
            link = self.client.runs.get_log_sas_url(self.resource_group, self.registry, run_id)
            if not link.log_link:
                return "(no log)"
            blob = BlobClient.from_blob_url(link.log_link, transport=self._blob_transport)
            with blob:
                text = blob.download_blob().readall().decode("utf-8", "replace")
        except (AzureError, ValueError, OSError) as exc:  # the log only explains: never fail on it
            return f"(log unavailable: {type(exc).__name__})"
        return "\n".join(text.rstrip().splitlines()[-_LOG_LINES:])

    def _digest_reference(self, run: Any, name: str) -> str:
        repository, _, tag = name.rpartition(":")
        for image in run.output_images or []:
            if image.repository == repository and image.tag == tag and image.digest:
                logger.info("ACR run %s pushed %s (%s)", run.run_id, name, image.digest)
                return f"{self.login_server}/{repository}@{image.digest}"
        raise ImageBuildError(
            f"ACR run {run.run_id} succeeded but reports no digest for {name} "
            f"(output images: {[f'{i.repository}:{i.tag}' for i in run.output_images or []]})"
        )


def management_client(
    credential: Any, subscription_id: str, **kwargs: Any
) -> ContainerRegistryManagementClient:
    """The registry's management client at ``API_VERSION`` (``kwargs``: e.g. ``transport``)."""
    return ContainerRegistryManagementClient(
        credential, subscription_id, api_version=API_VERSION, **kwargs
    )
