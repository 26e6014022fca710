"""How ``AmlModelRegistry`` keeps its bookkeeping in Azure ML model tags (see its module
docstring): reserved names, alias holders, version order and tag checks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backends.local.registry import check_tags as check_values
from core.interfaces import NotFoundError

if TYPE_CHECKING:
    from azure.ai.ml.entities import Model

RESERVED = "mlops."
SHA_TAG = "mlops.sha256"
FILE_TAG = "mlops.model_file"
ALIAS_TAG = "mlops.alias."


def holders(models: Iterable[Model]) -> dict[str, str]:
    """alias -> version; the newest setting wins if a crash left two holders."""
    best: dict[str, tuple[str, tuple[int, int, str], str]] = {}
    for model in models:
        version = str(model.version)
        for key, stamp in (model.tags or {}).items():
            if key.startswith(ALIAS_TAG):
                alias = key.removeprefix(ALIAS_TAG)
                rank = (stamp, version_key(version), version)
                if alias not in best or rank > best[alias]:
                    best[alias] = rank
    return {alias: rank[2] for alias, rank in best.items()}


def pick(models: Iterable[Model], name: str, version: str) -> Model:
    """The model entity of ``version`` (``NotFoundError`` if absent)."""
    for model in models:
        if str(model.version) == str(version):
            return model
    raise NotFoundError(f"model {name!r} has no version {version!r}")


def version_key(version: str) -> tuple[int, int, str]:
    """Sort key of a version string."""
    # Azure ML numbers versions "1", "2", ...; sort those numerically, any others after.
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def now() -> str:
    """The value of an alias tag set now."""
    # Fixed width, so that the tag values order as strings in time order.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_tags(tags: dict[str, str]) -> None:
    """Refuse what the local registry refuses, and the registry's own ``mlops.`` keys."""
    check_values(tags)
    for key in tags:
        if key.startswith(RESERVED):
            raise ValueError(f"tag {key!r}: the {RESERVED!r} prefix is reserved for the registry")
