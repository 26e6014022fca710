"""``ModelRegistry`` on the Azure ML workspace model registry.

Each version is an Azure ML ``custom_model`` whose path is the uploaded artifact folder.
Bookkeeping lives in tags under the reserved ``mlops.`` prefix, hidden from callers:

- ``mlops.sha256`` / ``mlops.model_file``: the model file and its digest, checked on download.
- ``mlops.alias.<alias>``: stage aliases. Workspace models have no aliases (their single
  ``stage`` field cannot hold ``qa`` and ``production`` on one version), so an alias is a tag
  whose value is the UTC time it was set. Moving it tags the new holder first, then clears
  the old ones; if a crash leaves two holders, the newest time wins, so readers never see
  the alias missing or pointing backwards. The next move cleans up the stale tag.
"""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceNotFoundError

from backends.azure._tags import (
    ALIAS_TAG,
    FILE_TAG,
    RESERVED,
    SHA_TAG,
    check_tags,
    holders,
    now,
    pick,
    version_key,
)
from backends.azure.client import call
from backends.local.registry import check_name, verify
from core.interfaces import BackendError, IntegrityError, ModelVersion, NotFoundError
from training.artifacts import sha256_file

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Model


class AmlModelRegistry:
    """``ModelRegistry`` backed by ``ml_client.models``.

    Args:
        ml_client: The workspace client (see ``backends.azure.client.workspace_client``).
    """

    def __init__(self, ml_client: MLClient) -> None:
        self._client = ml_client

    # ------------------------------------------------------------------ writes
    def register(
        self, name: str, artifact_dir: Path, model_file: str, tags: dict[str, str]
    ) -> ModelVersion:
        """Upload ``artifact_dir`` as the next version of ``name`` (Azure ML numbers it).

        Raises:
            NotFoundError: ``model_file`` is not in ``artifact_dir``.
            ValueError: Bad name, ``model_file`` outside the folder, or reserved tags.
        """
        check_name(name, "model name")
        check_tags(tags)
        if Path(model_file).is_absolute() or ".." in Path(model_file).parts:
            raise ValueError(f"model_file must be relative to the artifact folder: {model_file!r}")
        source = artifact_dir / model_file
        if not source.is_file():
            raise NotFoundError(f"model file {source} does not exist")
        from azure.ai.ml.entities import Model  # seconds to load: only when registering

        model = Model(
            name=name,
            path=str(artifact_dir),
            type="custom_model",
            tags={**tags, SHA_TAG: sha256_file(source), FILE_TAG: model_file},
        )
        created = call(f"register {name}", lambda: self._client.models.create_or_update(model))
        return self._to_version(created, {})

    def register_output(
        self, name: str, output_uri: str, model_file: str, sha256: str, tags: dict[str, str]
    ) -> ModelVersion:
        """Register a job's output (``azureml://jobs/<job>/outputs/<name>``) where it lies:
        nothing is downloaded or uploaded; the digest is the one the job recorded.

        Raises:
            ValueError: Bad name, not an ``azureml://`` URI, not a sha256, or reserved tags.
        """
        check_name(name, "model name")
        check_tags(tags)
        if not output_uri.startswith("azureml://"):
            raise ValueError(f"Azure ML registers job outputs by azureml:// URI: {output_uri!r}")
        if re.fullmatch(r"[0-9a-f]{64}", sha256) is None:
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        from azure.ai.ml.entities import Model

        model = Model(
            name=name,
            path=output_uri,
            type="custom_model",
            tags={**tags, SHA_TAG: sha256, FILE_TAG: model_file},
        )
        created = call(f"register {name}", lambda: self._client.models.create_or_update(model))
        return self._to_version(created, {})

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``: tag the new holder, then untag the old ones."""
        check_name(alias, "alias")
        models = self._models(name)
        target = pick(models, name, version)
        key = ALIAS_TAG + alias
        target.tags = {**(target.tags or {}), key: now()}
        self._save(target)
        for other in models:
            if other.version != target.version and key in (other.tags or {}):
                self._untag(other, key)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from every version holding it; a no-op if none does."""
        key = ALIAS_TAG + alias
        for model in self._models(name):
            if key in (model.tags or {}):
                self._untag(model, key)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        """Add tags to a version, replacing the values of keys it already has."""
        check_tags(tags)
        model = self._get(name, version)
        model.tags = {**(model.tags or {}), **tags}
        self._save(model)

    # ------------------------------------------------------------------ reads
    def get(self, name: str, version: str) -> ModelVersion:
        """One version (``NotFoundError`` if it does not exist or is archived)."""
        models = self._models(name)
        return self._to_version(pick(models, name, version), holders(models))

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All active versions of ``name``, oldest first (empty for an unknown name)."""
        return self.find(name, {})

    def find(self, name: str, tags: dict[str, str]) -> list[ModelVersion]:
        """Versions of ``name`` whose tags include every given key/value, oldest first."""
        models = self._models(name)
        owners = holders(models)
        return [
            self._to_version(m, owners)
            for m in models
            if all((m.tags or {}).get(k) == v for k, v in tags.items())
        ]

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or None."""
        models = self._models(name)
        owners = holders(models)
        version = owners.get(alias)
        return None if version is None else self._to_version(pick(models, name, version), owners)

    def download(self, name: str, version: str, dest: Path) -> Path:
        """Download the version's folder to ``dest/<name>/<version>`` and verify the sha256.

        Raises:
            NotFoundError: No such version.
            IntegrityError: The version has no recorded digest, or its model file is missing
                or differs from it (the downloaded folder is then removed).
        """
        model = self._get(name, version)
        tags = model.tags or {}
        model_file, expected = tags.get(FILE_TAG, ""), tags.get(SHA_TAG, "")
        label = f"{name} v{model.version}"
        if not model_file or not expected:
            raise IntegrityError(f"{label} has no recorded model file digest")
        staging = dest / f".download-{uuid.uuid4().hex}"
        target = dest / name / str(model.version)
        try:
            call(
                f"download {label}",
                lambda: self._client.models.download(name, str(model.version), staging),
            )
            # The SDK nests the folder as <path>/<name>/<uploaded folder name>/.
            found = sorted(staging.rglob(model_file), key=lambda p: len(p.parts))
            shutil.rmtree(target, ignore_errors=True)
            if found:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(found[0].parents[len(Path(model_file).parts) - 1], target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        verify(target, model_file, expected, label)
        return target

    # ------------------------------------------------------------------ helpers
    def _models(self, name: str) -> list[Model]:
        check_name(name, "model name")
        try:
            models = list(self._client.models.list(name=name))
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise BackendError(f"cannot list versions of model {name}: {exc}") from exc
        return sorted(models, key=lambda m: version_key(str(m.version)))

    def _get(self, name: str, version: str) -> Model:
        try:
            return self._client.models.get(name=name, version=version)
        except ResourceNotFoundError as exc:
            raise NotFoundError(f"model {name!r} has no version {version!r}") from exc
        except AzureError as exc:
            raise BackendError(f"cannot read model {name} v{version}: {exc}") from exc

    def _save(self, model: Model) -> None:
        # A PUT of an existing version with the same path updates its tags in place.
        call(
            f"update {model.name} v{model.version}",
            lambda: self._client.models.create_or_update(model),
        )

    def _untag(self, model: Model, key: str) -> None:
        model.tags = {k: v for k, v in (model.tags or {}).items() if k != key}
        self._save(model)

    @staticmethod
    def _to_version(model: Model, owners: dict[str, str]) -> ModelVersion:
        tags = dict(model.tags or {})
        created = model.creation_context.created_at if model.creation_context else None
        return ModelVersion(
            name=str(model.name),
            version=str(model.version),
            uri=str(model.path or ""),
            sha256=tags.get(SHA_TAG, ""),
            tags={k: v for k, v in tags.items() if not k.startswith(RESERVED)},
            aliases=tuple(sorted(a for a, v in owners.items() if v == str(model.version))),
            created_at=created if isinstance(created, datetime) else None,
        )
