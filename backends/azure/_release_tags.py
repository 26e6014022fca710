"""A release as Azure resource tags: how the ACI and AKS targets remember what they run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.interfaces import ReleaseSpec

FIELDS = ("model_name", "model_version", "model_sha256", "image")


def release_tags(release: ReleaseSpec, prefix: str = "") -> dict[str, str]:
    """``release`` as tags, each key behind ``prefix`` (e.g. ``previous.``)."""
    return {f"{prefix}{f}": str(getattr(release, f)) for f in FIELDS}


def release_from_tags(
    tags: Mapping[str, Any], prefix: str = "", replicas: int = 1
) -> ReleaseSpec | None:
    """The release ``release_tags`` wrote under ``prefix``; None unless every field is set."""
    name, version, sha, image = (str(tags.get(f"{prefix}{f}") or "") for f in FIELDS)
    if not (name and version and sha and image):
        return None
    return ReleaseSpec(name, version, sha, image=image, replicas=replicas)
