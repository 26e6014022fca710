"""The production URL exactly as ``mlops release`` deploys it, for the benchmark.

The release code of the local profile does the work: ``DockerImageBuilder`` builds the
scoring image of the benchmark's model (the project's Docker engine and build cache, so a
second run reuses the image), and ``DockerTarget.deploy("production", ...)`` starts its
replicas behind the environment's HAProxy with the key file, health checks and request logs
of a real release. Only the target's state folder and port are the benchmark's own, so a
running stack's production is never touched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.interfaces import Endpoint, ReleaseSpec
from training.artifacts import MODEL_FILE, sha256_file

logger = logging.getLogger(__name__)
MODEL_NAME = "diabetes-ridge"
ENVIRONMENT = "production"


@dataclass(frozen=True)
class Production:
    """A deployed production environment: its endpoint and what runs it."""

    endpoint: Endpoint
    image: str
    docker_host: str
    target: Any  # the DockerTarget


def docker_host() -> str:
    """The project's Docker engine (started like ``mlops up`` does when none runs)."""
    from backends.local.dockerd import DockerEngine
    from core.settings import load_settings

    settings = load_settings()
    candidates = [settings.docker_host] if settings.docker_host else None
    return DockerEngine(settings.docker_path, candidates=candidates).ensure()


def build_image(host: str, model_dir: Path, version: str = "bench") -> str:
    """The scoring image of ``model_dir``, built (or reused) by the project's builder."""
    from backends.local.docker_image import DockerImageBuilder
    from core.settings import load_settings

    settings = load_settings()
    builder = DockerImageBuilder(host, settings.docker_path / "cache", settings.base_image)
    return builder.build(MODEL_NAME, version, model_dir, code_version="bench")


@contextlib.contextmanager
def deployed(
    model_dir: Path, state_dir: Path, port: int, collection: Any = None
) -> Iterator[Production]:
    """Release ``model_dir`` to a production environment on ``port``; tear it down after.
    With a ``backends.collect_sas.Collection``, the replicas collect what they score."""
    import docker

    from backends.local.docker_target import DockerTarget

    host = docker_host()
    image = build_image(host, model_dir)
    target = DockerTarget(
        lambda: docker.DockerClient(base_url=host),
        state_dir,
        {ENVIRONMENT: port},
        collection=collection,
    )
    release = ReleaseSpec(MODEL_NAME, "bench", sha256_file(model_dir / MODEL_FILE), image=image)
    try:
        endpoint = target.deploy(ENVIRONMENT, release)
        yield Production(endpoint, image, host, target)
    finally:
        target.teardown(ENVIRONMENT)
