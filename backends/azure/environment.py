"""The Azure ML training environment, built from the lock (``constraints.txt``).

Training in Azure ML and scoring in the image must use the same library versions, or a
pickled model may not load. Both take their pins from ``constraints.txt``: the scoring image
installs the versions of this environment (``backends.local.wheelhouse``), and this module
turns the training slice of the same file into an Azure ML environment. Its version is a hash
of what it installs (base image, Python, pins), so a change of the lock gives a new version,
and an unchanged lock reuses the registered one: ``ensure`` registers it only when missing.

The environment also holds MLflow (``mlflow-skinny`` and Azure ML's ``azureml-mlflow``
plugin, with their closure), through which a sweep's trials log the metric the sweep job
compares (``training.train --mlflow``). Their pins come from ``TRACKING_LOCK`` beside the
lock: azureml-mlflow caps two packages below ``constraints.txt``'s pins, and every version
the two files share must agree (else the environment is refused).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.azure.client import call
from core.interfaces import BackendError, NotFoundError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

log = logging.getLogger(__name__)

# Azure ML's Ubuntu base with conda, pinned by its dated tag (the OS layer; every Python
# library comes from the pins below).
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi5.0-ubuntu24.04:20260901.v1"
PYTHON = "3.11"  # the project's Python (pyproject: >=3.11,<3.12)
# What `python -m training.train` imports, with everything those need: the whole closure is
# pinned, so nothing floats (tests/unit/backends/azure/test_training_environment.py checks
# the closure against the installed metadata).
TRAINING_PACKAGES = (
    "annotated-types",
    "cloudpickle",
    "joblib",
    "narwhals",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic",
    "pydantic-core",
    "python-dateutil",
    "scikit-learn",
    "scipy",
    "six",
    "threadpoolctl",
    "typing-extensions",
    "typing-inspection",
    "tzdata",
)


# Beside constraints.txt, relative to it.
TRACKING_LOCK = Path("deployments/azure/aml-tracking.txt")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(lock: Path) -> dict[str, str]:
    """Canonical name -> version of every ``name==version`` line of ``lock``."""
    if not lock.is_file():
        raise BackendError(f"no lock at {lock}: the training environment is built from it")
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[canonical(name)] = version.strip()
    return pins


def environment_pins(lock: Path, tracking: Path) -> list[str]:
    """The training packages as ``lock`` pins them, plus every pin of ``tracking`` (sorted).

    Raises:
        BackendError: A file is missing, lacks a training package, or the two disagree on
            a package they share.
    """
    mine = dict(pin.split("==") for pin in training_pins(lock))
    tracked = read_pins(tracking)
    clash = sorted(n for n in set(mine) & set(tracked) if mine[n] != tracked[n])
    if clash:
        raise BackendError(f"{tracking.name} and {lock.name} disagree on {', '.join(clash)}")
    return sorted(f"{name}=={version}" for name, version in (tracked | mine).items())


def training_pins(lock: Path, packages: tuple[str, ...] = TRAINING_PACKAGES) -> list[str]:
    """``name==version`` for each training package, as ``lock`` pins it (sorted)."""
    pins = read_pins(lock)
    missing = [p for p in packages if canonical(p) not in pins]
    if missing:
        raise BackendError(f"{lock.name} pins no version of {', '.join(missing)}")
    return sorted(f"{canonical(p)}=={pins[canonical(p)]}" for p in packages)


def conda_spec(pins: list[str]) -> dict[str, Any]:
    """The conda file of the environment: Python from conda-forge, the pins from pip."""
    return {
        "name": "diabetes-train",
        "channels": ["conda-forge"],
        "dependencies": [f"python={PYTHON}", "pip", {"pip": pins}],
    }


def environment_version(spec: dict[str, Any], image: str = BASE_IMAGE) -> str:
    """16 hex digits of sha256 over the image and the conda file."""
    text = json.dumps({"image": image, "conda": spec}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TrainingEnvironment:
    """Registers the training environment of a lock in a workspace, once per version.

    Args:
        ml_client: The workspace client.
        name: The environment's name (``diabetes-train-env``).
        lock: ``constraints.txt``.
        image: The base image.
        tracking: The MLflow pins; ``TRACKING_LOCK`` beside ``lock`` by default.
    """

    def __init__(
        self,
        ml_client: MLClient,
        name: str,
        lock: Path,
        image: str = BASE_IMAGE,
        tracking: Path | None = None,
    ) -> None:
        self._client = ml_client
        self.name = name
        self.lock = lock
        self.image = image
        self.tracking = tracking or lock.parent / TRACKING_LOCK
        self.spec = conda_spec(environment_pins(lock, self.tracking))
        self.version = environment_version(self.spec, image)

    @property
    def reference(self) -> str:
        """``name:version``, as a job's ``environment``."""
        return f"{self.name}:{self.version}"

    def ensure(self) -> str:
        """Register this version if the workspace lacks it; returns ``name:version``."""
        try:
            call(
                f"read environment {self.reference}",
                lambda: self._client.environments.get(self.name, version=self.version),
            )
            return self.reference
        except NotFoundError:
            pass
        from azure.ai.ml.entities import Environment

        lock_sha = hashlib.sha256(self.lock.read_bytes()).hexdigest()
        environment = Environment(
            name=self.name,
            version=self.version,
            image=self.image,
            conda_file=self.spec,
            description="Training environment from the project's constraints.txt",
            tags={"lock": self.lock.name, "lock_sha256": lock_sha, "python": PYTHON},
        )
        log.info("registering environment %s (built from %s)", self.reference, self.lock.name)
        call(
            f"register environment {self.reference}",
            lambda: self._client.environments.create_or_update(environment),
        )
        return self.reference
