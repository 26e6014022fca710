"""The resources flows are handed, like Dagster resources: resolved once, never looked up mid-run.

A deployed run gets the defaults the settings choose (``default_*``); a test hands a flow
in-memory ones (``backends.local.memory``) through the same parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backends import Backends, get_backends, get_batch_scoring, get_release_backends
from backends.telemetry import configure_telemetry
from core.interfaces import BatchScoring, DataLake, DeploymentTarget, ImageBuilder, ModelRegistry
from core.probe import HttpProbe, ServiceProbe
from core.settings import Settings


@dataclass(frozen=True)
class ReleaseResources:
    """What a release works with: the registry, the image builder (None when the target runs
    the model folder itself), the deployment target, and the client that checks a service."""

    registry: ModelRegistry
    builder: ImageBuilder | None
    target: DeploymentTarget
    probe: ServiceProbe = field(default_factory=HttpProbe)


def default_backends(settings: Settings) -> Backends:
    """The data lake, compute and registry of the settings' profile (and, when configured,
    telemetry to Application Insights for the rest of the run)."""
    configure_telemetry(settings)
    return get_backends(settings)


def default_release_resources(settings: Settings) -> ReleaseResources:
    """The registry, builder and target of the settings' profile (may start the local engine);
    telemetry as ``default_backends``."""
    configure_telemetry(settings)
    release = get_release_backends(settings)
    return ReleaseResources(
        registry=get_backends(settings).registry, builder=release.builder, target=release.target
    )


@dataclass(frozen=True)
class BatchResources:
    """What batch scoring works with: the lake, the registry and the batch backend."""

    datalake: DataLake
    registry: ModelRegistry
    batch: BatchScoring


def default_batch_resources(settings: Settings) -> BatchResources:
    """The lake, registry and batch backend of the settings' profile (contacts nothing)."""
    backends = get_backends(settings)
    return BatchResources(
        backends.datalake, backends.registry, get_batch_scoring(settings, backends)
    )
