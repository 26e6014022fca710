"""The scoring environments across ``mlops down`` and ``mlops up``.

``down`` stops QA and production (their processes or containers must not outlive the
stack) but first remembers the release each one ran. ``up`` brings back each release the
registry still records in that stage, so production serves again without a new release;
when it cannot, it says which command does.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Protocol

from backends.local.envstate import read_release
from core.interfaces import BackendError, DeploymentTarget, ModelVersion

ENVIRONMENTS = ("qa", "production")


class Stages(Protocol):
    """The part of ``ModelRegistry`` that ``restore`` reads: which version a stage holds."""

    def get_alias(self, name: str, alias: str) -> ModelVersion | None: ...


def remember(target: DeploymentTarget, folder: Path) -> None:
    """Record what each environment runs now, to ``folder/<environment>.json``."""
    for environment in ENVIRONMENTS:
        release = target.current_release(environment)
        if release is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{environment}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(release)), encoding="utf-8")
        os.replace(tmp, path)  # a crash leaves the old record or the new one


def restore(target: DeploymentTarget, registry: Stages, model_name: str, folder: Path) -> list[str]:
    """Redeploy the remembered releases the registry still records; one line per environment.

    An environment that already serves, or whose stage the registry no longer records, is
    left alone (its record is dropped). Production without a usable record gets the command
    that releases its version again.
    """
    lines = []
    for environment in ENVIRONMENTS:
        record = folder / f"{environment}.json"
        staged = registry.get_alias(model_name, environment)
        if target.current(environment) is not None or staged is None:
            record.unlink(missing_ok=True)
            continue
        how = f"run `mlops release --version {staged.version}` to serve it again"
        try:
            release = read_release(json.loads(record.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            release = None
        if release is None or release.model_version != staged.version:
            if environment == "production":
                lines.append(f"{environment:15} v{staged.version} is not served: {how}")
            continue
        try:
            endpoint = target.deploy(environment, release)
        except BackendError as exc:
            lines.append(f"{environment:15} v{staged.version} could not be restored ({exc}); {how}")
            continue
        record.unlink(missing_ok=True)
        lines.append(f"{environment:15} v{staged.version} restored at {endpoint.url}")
    return lines
