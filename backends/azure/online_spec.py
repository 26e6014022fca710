"""What an Azure ML online deployment of a release looks like (``AksOnlineTarget`` sends it).

One place for the parts of the spec that are policy rather than steps: the deployment's name,
the routes Azure ML probes and forwards, how it scales, and how a deployment read back maps
to a ``ReleaseSpec``.

Routes: a custom container tells Azure ML its routes in the environment's inference config.
The platform probes liveness and readiness itself, inside the cluster, and its router
forwards only the scoring route: clients (the smoke test among them) reach the container
through ``POST <scoring uri>`` alone.

Scale: a Kubernetes deployment autoscales on CPU use (``TargetUtilizationScaleSettings``,
REST ``scaleSettings.scaleType = "TargetUtilization"`` with ``minInstances``,
``maxInstances``, ``targetUtilizationPercentage`` and an ISO 8601 ``pollingInterval``). A
managed deployment runs a fixed count: azure-ai-ml refuses any scale settings but
``DefaultScaleSettings`` there ("ManagedOnlineEndpoint supports DefaultScaleSettings only");
managed autoscale is a separate Azure Monitor autoscale resource, not part of a release.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from backends.azure._release_tags import release_from_tags, release_tags
from core.interfaces import ReleaseSpec

if TYPE_CHECKING:
    from azure.ai.ml.entities import (
        OnlineDeployment,
        OnlineEndpoint,
        TargetUtilizationScaleSettings,
    )

Kind = Literal["kubernetes", "managed"]
PORT = 5001
# The scoring image's routes (scoring/app.py), as Azure ML probes and forwards them.
ROUTES = {
    "liveness_route": {"path": "/healthz", "port": PORT},
    "readiness_route": {"path": "/", "port": PORT},
    "scoring_route": {"path": "/score", "port": PORT},
}
# Azure ML endpoint and deployment names: 3-32 characters, a letter first, letters, digits
# and hyphens, no hyphen last.
NAME = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]{1,30})[a-zA-Z0-9]$")


@dataclass(frozen=True)
class Autoscale:
    """Target-utilization autoscale of a Kubernetes deployment (``core.settings``:
    ``MLOPS_AZURE__AUTOSCALE_*``)."""

    min_instances: int = 2
    max_instances: int = 4
    target_utilization: int = 70
    polling_seconds: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.min_instances <= self.max_instances:
            raise ValueError("autoscale needs 1 <= min_instances <= max_instances")
        if not 1 <= self.target_utilization <= 100:
            raise ValueError("autoscale target_utilization is a percentage (1-100)")
        if self.polling_seconds < 1:
            raise ValueError("autoscale polling_seconds must be at least 1")


def deployment_name(release: ReleaseSpec) -> str:
    """The Azure ML deployment name of a release: ``v<version>-<sha8>-<image6>``.

    The model digest and a hash of the image reference make it unique per release: a new
    image of the same model (new scoring code) is a new deployment, deployed and rolled back
    like a new model. The version is cut short if needed to keep the name within 32 characters.
    """
    version = re.sub(r"[^a-z0-9]+", "-", release.model_version.lower()).strip("-") or "0"
    image = hashlib.sha256(release.image.encode()).hexdigest()[:6]
    suffix = f"-{release.model_sha256.lower()[:8]}-{image}"
    return f"v{version[: 31 - len(suffix)].rstrip('-')}{suffix}"


def build_deployment(
    kind: Kind,
    *,
    endpoint: str,
    name: str,
    release: ReleaseSpec,
    replicas: int,
    environment_variables: dict[str, str],
    instance_type: str,
    autoscale: Autoscale,
) -> OnlineDeployment:
    """The SDK deployment of ``release``: its image with the routes, ``replicas`` instances
    (the autoscale minimum on Kubernetes, which may grow to ``autoscale.max_instances``)."""
    from azure.ai.ml.entities import (
        Environment,
        KubernetesOnlineDeployment,
        ManagedOnlineDeployment,
    )

    common: dict[str, Any] = {
        "name": name,
        "endpoint_name": endpoint,
        "environment": Environment(image=release.image, inference_config=ROUTES),
        "environment_variables": environment_variables,
        "instance_count": replicas,
        "instance_type": instance_type or None,
        "tags": release_tags(release),
    }
    if kind == "managed":
        return ManagedOnlineDeployment(**common)
    return KubernetesOnlineDeployment(**common, scale_settings=scale_settings(autoscale, replicas))


def scale_settings(autoscale: Autoscale, replicas: int) -> TargetUtilizationScaleSettings:
    """``TargetUtilizationScaleSettings`` from ``replicas`` (the floor) up to the autoscale
    maximum (raised to the floor if a release asks for more instances than it allows)."""
    from azure.ai.ml.entities import TargetUtilizationScaleSettings

    return TargetUtilizationScaleSettings(
        min_instances=replicas,
        max_instances=max(autoscale.max_instances, replicas),
        polling_interval=autoscale.polling_seconds,
        target_utilization_percentage=autoscale.target_utilization,
    )


def live(endpoint: OnlineEndpoint) -> str | None:
    """The deployment with the most traffic, or None if no deployment has any."""
    shares = {str(k): int(v or 0) for k, v in (endpoint.traffic or {}).items()}
    best = max(shares, key=lambda k: shares[k], default=None)
    return best if best is not None and shares[best] > 0 else None


def succeeded(state: object) -> bool:
    return str(getattr(state, "value", state) or "").lower() == "succeeded"


def release_of(deployment: OnlineDeployment) -> ReleaseSpec | None:
    """The release a deployment runs (from its tags), with its instance count as replicas."""
    return release_from_tags(deployment.tags or {}, replicas=int(deployment.instance_count or 1))


def as_deployed(release: ReleaseSpec, replicas: int) -> ReleaseSpec:
    """``release`` as ``release_of`` reads it back from its deployment."""
    return ReleaseSpec(
        release.model_name,
        release.model_version,
        release.model_sha256,
        image=release.image,
        replicas=replicas,
    )


def label(release: ReleaseSpec) -> str:
    return f"{release.model_name} v{release.model_version}"
