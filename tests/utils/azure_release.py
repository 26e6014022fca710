"""Release resources on the Azure fakes: the real ACI and Azure ML online-endpoint adapters on
recording transports, QA's private network and Azure ML's router on loopback sockets, both
ending in the real scoring app, and an image builder that names images by digest.

Used by the release flow through the Azure fakes (tests/unit/flows/test_release_on_azure.py)
and the Azure profile's whole loop (tests/e2e/test_azure_profile.py).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from backends.azure.aci import AciTarget
from backends.azure.aks import AksOnlineTarget, Autoscale
from backends.routed import TargetsByEnvironment
from core.interfaces import ModelRegistry
from core.probe import HttpProbe
from flows.resources import ReleaseResources
from tests.utils.azure_aci import FakeAci
from tests.utils.azure_http import SUB, FakeCredential, RecordingTransport, fake_ml_client
from tests.utils.azure_ml_endpoints import FakeAmlEndpoints, MirroredKeys
from tests.utils.azure_router import Containers, OnlineRouter, PrivateNetwork, serve
from training.artifacts import MODEL_FILE

SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/rg-release/providers/Microsoft.Network/"
    "virtualNetworks/vnet-mlops/subnets/qa"
)
QA_KEY = "qa-k3y-from-key-vault-0123456789abcdef"
AUTOSCALE = Autoscale(2, 5, 65, 15)


class DigestImageBuilder:
    """Names each build by digest, as ``AcrImageBuilder`` returns a pushed image, and keeps
    the model folder behind it (what the fake containers run)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images: dict[str, Path] = {}

    def build(
        self, model_name: str, model_version: str, artifact_dir: Path, code_version: str
    ) -> str:
        content = (artifact_dir / MODEL_FILE).read_bytes() + code_version.encode()
        digest = hashlib.sha256(content).hexdigest()
        folder = self.root / digest
        if not folder.exists():
            shutil.copytree(artifact_dir, folder)
        reference = f"mlops.azurecr.io/mlops/{model_name}@sha256:{digest}"
        self.images[reference] = folder
        return reference


@dataclass
class Azure:
    resources: ReleaseResources
    transport: RecordingTransport
    endpoints: FakeAmlEndpoints
    aci: FakeAci
    router: OnlineRouter
    router_url: str


@contextmanager
def azure_release(
    registry: ModelRegistry,
    images: Path,
    *,
    kind: Literal["kubernetes", "managed"] = "kubernetes",
    autoscale: Autoscale = AUTOSCALE,
    instance_type: str = "Standard_DS3_v2",
) -> Iterator[Azure]:
    """Release resources with ``registry``, QA on ACI (private, in ``SUBNET``) and production
    on a ``kind`` online endpoint with ``autoscale``; every request routed when it ends."""
    transport = RecordingTransport()
    builder = DigestImageBuilder(images)
    containers = Containers(builder.images)
    vault = MirroredKeys()
    aci = FakeAci(transport, private_ip="127.0.0.1")
    endpoints = FakeAmlEndpoints(transport)
    router = OnlineRouter(endpoints, containers, vault.resolve)
    qa_network = PrivateNetwork(aci, "diabetes-scoring-qa", containers)
    try:
        with serve(router) as router_port, serve(qa_network) as qa_port:
            endpoints.router_base = f"http://127.0.0.1:{router_port}"
            qa = AciTarget(
                ContainerInstanceManagementClient(FakeCredential(), SUB, transport=transport),
                "rg-release",
                "westeurope",
                keys=lambda environment: QA_KEY,
                subnet_id=SUBNET,
                port=qa_port,
            )
            production = AksOnlineTarget(
                fake_ml_client(transport),
                "aks-prod",
                vault,
                kind=kind,
                instance_type=instance_type if kind == "managed" else "",
                autoscale=autoscale,
                timeout=30,
            )
            target = TargetsByEnvironment({"qa": qa, "production": production})
            resources = ReleaseResources(registry, builder, target, HttpProbe())
            yield Azure(resources, transport, endpoints, aci, router, endpoints.router_base)
    finally:
        containers.close()
    assert not transport.unexpected, f"unrouted requests: {transport.unexpected}"
