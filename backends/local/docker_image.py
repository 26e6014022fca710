"""``ImageBuilder`` on a local Docker engine: one scoring image per registered model version.

The build context is assembled in a temporary folder from exactly what the image needs
(``scoring/Dockerfile``, a wheelhouse pinned to the model's ``run.json``, the ``scoring``
package, ``training/schema.py`` and ``training/artifacts.py`` and the model folder) and
built with the network off.
An image whose labels show the same model sha256 and the same build inputs is reused.

Telemetry (``telemetry=True``, set when the project has an Application Insights connection
string) adds ``azure-monitor-opentelemetry`` to the image's requirements. Such an image has
its own wheelhouse (the list differs), its own build inputs and its own tag (``-otel``), so
it never replaces or stands in for the lean image of the same model and code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path

import docker
from docker.errors import BuildError, DockerException, ImageNotFound

from backends.local.base_image import ensure_base_image
from backends.local.wheelhouse import (
    LOCK_FILE,
    REQUIRED,
    Wheelhouse,
    build_wheelhouse,
    read_run,
    recorded_versions,
    requirements_for,
)
from core.interfaces import BackendError
from training.artifacts import MODEL_FILE, sha256_file

logger = logging.getLogger(__name__)

# The modules of ``training`` the scoring service imports (the import-linter contract
# "scoring ships alone" keeps it to these); they go to app/training/ in the image.
TRAINING_MODULES = ("__init__.py", "schema.py", "artifacts.py", "collected.py", "predict.py")
LABEL_SHA = "mlops.model.sha256"
LABEL_INPUTS = "mlops.build.inputs"
LABEL_TELEMETRY = "mlops.telemetry"  # "azure-monitor" when the exporter is installed, else "off"
TELEMETRY_SUFFIX = "-otel"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "Dockerfile", ".dockerignore")


class ImageBuildError(BackendError):
    """The scoring image cannot be built; the message says why."""


def image_tag(
    model_name: str,
    model_version: str,
    code_version: str,
    model_sha256: str = "",
    *,
    telemetry: bool = False,
) -> str:
    """``mlops/<model>:<version>-<sha8>-<code12>``, with ``-dirty`` for an uncommitted tree and
    ``-otel`` for an image with the telemetry exporter.

    ``<sha8>`` (the model file's digest, when given) makes the tag name the model itself:
    stacks with registries of their own share one Docker engine (tests, worktrees), and
    their version 1 is not the same model; without it, one stack's build re-tagged the
    other's image and its next container ran the other model.

    >>> image_tag("diabetes-ridge", "3", "0123456789abcdef+dirty", "f00dcafe" * 8)
    'mlops/diabetes-ridge:3-f00dcafe-0123456789ab-dirty'
    >>> image_tag("diabetes-ridge", "3", "0123456789abcdef", telemetry=True)
    'mlops/diabetes-ridge:3-0123456789ab-otel'
    """
    repository = re.sub(r"[^a-z0-9._-]+", "-", model_name.lower()).strip("._-") or "model"
    commit, _, local = code_version.partition("+")
    suffix = (f"-{model_sha256[:8]}" if model_sha256 else "") + f"-{commit[:12]}"
    suffix = re.sub(r"[^A-Za-z0-9_.-]+", "_", suffix + ("-dirty" if local else ""))
    suffix += TELEMETRY_SUFFIX if telemetry else ""
    version = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_version)
    # Docker allows 128 characters: a long version is cut, never what tells models apart.
    tag = (version[: 128 - len(suffix)] + suffix).lstrip(".-")
    return f"mlops/{repository}:{tag}"


def _package_dir(name: str) -> Path:
    spec = find_spec(name)  # without importing it
    if spec is None or spec.origin is None:
        raise ImageBuildError(f"the {name} package is not importable from this environment")
    return Path(spec.origin).parent


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


class DockerImageBuilder:
    """Builds scoring images on a Docker engine (``ImageBuilder``).

    Args:
        docker_host: The engine, e.g. ``DockerEngine(...).ensure()``.
        cache_dir: Where wheelhouses and the base image tarball are cached.
        base_image: ``BASE_IMAGE`` build argument; ``None`` ensures one on first build.
        telemetry: Install the Application Insights exporter (``scoring.telemetry``); off,
            the image stays lean and a connection string given to it only logs a warning.
        client_factory: Makes the client (tests); default ``DockerClient(base_url=...)``.
    """

    def __init__(
        self,
        docker_host: str,
        cache_dir: Path,
        base_image: str | None = None,
        *,
        telemetry: bool = False,
        client_factory: Callable[[], docker.DockerClient] | None = None,
    ) -> None:
        self.docker_host = docker_host
        self.cache_dir = cache_dir.resolve()
        self.base_image = base_image
        self.telemetry = telemetry
        # Builds stream no output while pip installs: allow long silences.
        self._factory = client_factory or (
            lambda: docker.DockerClient(base_url=docker_host, timeout=900)
        )

    def wheelhouse(self, artifact_dir: Path) -> Wheelhouse:
        """The wheelhouse for a model folder; refuses a scikit-learn it cannot provide."""
        run = read_run(artifact_dir)
        wheels = build_wheelhouse(requirements_for(run, telemetry=self.telemetry), self.cache_dir)
        recorded = recorded_versions(run)[REQUIRED]
        if wheels.version_of(REQUIRED) != recorded:
            raise ImageBuildError(
                f"the model was trained with {REQUIRED} {recorded} but the scoring image "
                f"would get {wheels.version_of(REQUIRED)}: refusing to build"
            )
        return wheels

    def build(
        self, model_name: str, model_version: str, artifact_dir: Path, code_version: str
    ) -> str:
        """Build (or reuse) the scoring image for one model version; returns its tag.

        Raises:
            ImageBuildError: The model folder is incomplete, its recorded library versions
                cannot be provided (checked before any build), or the build failed.
        """
        artifact_dir = artifact_dir.resolve()
        model_file = artifact_dir / MODEL_FILE
        if not model_file.is_file():
            raise ImageBuildError(f"{model_file} is missing: is {artifact_dir} a model folder?")
        try:
            wheels = self.wheelhouse(artifact_dir)
        except BackendError as exc:
            raise ImageBuildError(
                f"cannot build a scoring image for {artifact_dir}: {exc}"
            ) from exc
        sha = sha256_file(model_file)
        tag = image_tag(model_name, model_version, code_version, sha, telemetry=self.telemetry)
        client = self._factory()
        try:
            base = self.base_image or ensure_base_image(client, cache_dir=self.cache_dir)
            inputs = self._inputs_digest(wheels, artifact_dir, base, client)
            if self._reusable(client, tag, sha, inputs):
                logger.info("reusing %s (same model and build inputs)", tag)
                return tag
            with tempfile.TemporaryDirectory(prefix="mlops-build-") as context:
                self._assemble(Path(context), wheels, artifact_dir)
                self._docker_build(client, Path(context), tag, {
                    "BASE_IMAGE": base,
                    "MODEL_NAME": model_name,
                    "MODEL_VERSION": model_version,
                    "MODEL_SHA256": sha,
                    "CODE_VERSION": code_version,
                }, {LABEL_INPUTS: inputs, LABEL_TELEMETRY: self.telemetry_label})  # fmt: skip
        finally:
            client.close()
        logger.info("built %s", tag)
        return tag

    @property
    def telemetry_label(self) -> str:
        """The ``mlops.telemetry`` label of the images this builder makes."""
        return "azure-monitor" if self.telemetry else "off"

    # ---------------------------------------------------------------- helpers
    def _inputs_digest(
        self, wheels: Wheelhouse, artifact_dir: Path, base: str, client: docker.DockerClient
    ) -> str:
        """A hash of everything that goes into the image, for reuse decisions."""
        digest = hashlib.sha256(wheels.lock_text.encode())
        digest.update(self.telemetry_label.encode())  # the lock differs too; say it anyway
        digest.update(str(client.images.get(base).id).encode())
        scoring, training = _package_dir("scoring"), _package_dir("training")
        pairs = [(scoring.parent, path) for path in _files(scoring)]
        pairs += [(training.parent, training / name) for name in TRAINING_MODULES]
        pairs += [(artifact_dir, path) for path in _files(artifact_dir)]
        for root, path in pairs:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:32]

    @staticmethod
    def _reusable(client: docker.DockerClient, tag: str, sha: str, inputs: str) -> bool:
        try:
            labels = client.images.get(tag).labels or {}
        except ImageNotFound:
            return False
        return labels.get(LABEL_SHA) == sha and labels.get(LABEL_INPUTS) == inputs

    @staticmethod
    def _assemble(context: Path, wheels: Wheelhouse, artifact_dir: Path) -> None:
        scoring, training = _package_dir("scoring"), _package_dir("training")
        shutil.copy2(scoring / "Dockerfile", context / "Dockerfile")
        (context / "requirements.txt").write_text(wheels.lock_text, encoding="utf-8")
        (context / "wheels").mkdir()
        for wheel in wheels.path.glob("*.whl"):
            try:  # hard links: 80 MB of wheels cost nothing when on one file system
                os.link(wheel, context / "wheels" / wheel.name)
            except OSError:
                shutil.copy2(wheel, context / "wheels" / wheel.name)
        shutil.copytree(scoring, context / "app" / "scoring", ignore=_IGNORED)
        (context / "app" / "training").mkdir(parents=True)
        for name in TRAINING_MODULES:
            shutil.copy2(training / name, context / "app" / "training" / name)
        shutil.copytree(artifact_dir, context / "model", ignore=_IGNORED)
        if (wheels.path / LOCK_FILE).read_text() != wheels.lock_text:
            raise ImageBuildError(f"the wheelhouse {wheels.path} changed while building")

    @staticmethod
    def _docker_build(
        client: docker.DockerClient,
        context: Path,
        tag: str,
        buildargs: dict[str, str],
        labels: dict[str, str],
    ) -> None:
        logger.info("building %s (base %s)", tag, buildargs["BASE_IMAGE"])
        try:
            client.images.build(
                path=str(context),
                tag=tag,
                buildargs=buildargs,
                labels=labels,
                network_mode="none",  # everything comes from the context
                rm=True,
                forcerm=True,
                pull=False,
            )
        except BuildError as exc:
            log = "".join(
                str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log
            )
            tail = "\n".join(log.strip().splitlines()[-15:])
            raise ImageBuildError(f"docker build of {tag} failed: {exc.msg}\n{tail}") from None
        except DockerException as exc:
            raise ImageBuildError(f"docker build of {tag} failed: {exc}") from None
