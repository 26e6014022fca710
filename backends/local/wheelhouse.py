"""The scoring image's Python dependencies, downloaded on the host as cp311 Linux wheels.

The build itself has no network (``network_mode="none"``): everything the image installs
comes from this folder. The model's libraries are pinned to EXACTLY the versions recorded
in ``run.json`` at training time (a joblib pickle is only guaranteed to load under the
versions that wrote it); the service's own libraries are pinned to this environment's.
A version that cannot be had fails here, before any image is built, not in the container.

Each requirement list gets its own folder, named by a hash of the list, so a rebuild with
the same list downloads nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from core.interfaces import BackendError
from training.artifacts import RUN_FILE

logger = logging.getLogger(__name__)

# What ``python -m scoring`` imports besides the model's libraries.
SERVICE_PACKAGES = (
    "uvicorn",
    "httptools",
    "uvloop",
    "orjson",
    "pydantic",
    "pydantic-settings",
    "prometheus-client",
)
# What ``scoring.telemetry`` imports when a connection string is set: only in an image built
# with telemetry on. Measured: 42 more packages (OpenTelemetry, azure-core, azure-identity,
# cryptography...), +36.5 MB on a 452 MB image.
TELEMETRY_PACKAGES = ("azure-monitor-opentelemetry",)
# run.json keys that may hold the training-time versions (training/train.py writes "versions").
VERSION_KEYS = ("versions", "library_versions", "libraries", "packages")
ALIASES = {"sklearn": "scikit-learn"}
REQUIRED = "scikit-learn"
PYTHON_VERSION = "3.11"
# Debian bookworm has glibc 2.36: every manylinux tag up to it runs in the image.
GLIBC_MINOR = 36
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MINOR, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
LOCK_FILE = "requirements.txt"
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


class WheelhouseError(BackendError):
    """The scoring environment cannot provide the required versions; the message says which."""


def canonical(name: str) -> str:
    """PEP 503 name: ``Scikit_Learn`` -> ``scikit-learn`` (and ``sklearn`` -> ``scikit-learn``)."""
    name = re.sub(r"[-_.]+", "-", name).lower()
    return ALIASES.get(name, name)


def recorded_versions(run: Mapping[str, Any]) -> dict[str, str]:
    """The library versions recorded at training time in a parsed ``run.json``.

    Raises:
        WheelhouseError: No versions are recorded, or scikit-learn's is missing.
    """
    for key in VERSION_KEYS:
        value = run.get(key)
        if isinstance(value, Mapping) and value:
            versions = {canonical(str(k)): str(v) for k, v in value.items()}
            break
    else:
        raise WheelhouseError(
            "run.json records no library versions (expected a 'versions' object): "
            "the scoring image cannot be pinned to the training environment"
        )
    if not versions.get(REQUIRED):
        raise WheelhouseError(f"run.json records no {REQUIRED} version: {sorted(versions)}")
    return versions


def read_run(artifact_dir: Path) -> dict[str, Any]:
    """Parse ``run.json`` of a model folder."""
    path = artifact_dir / RUN_FILE
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WheelhouseError(f"{path} is missing: is {artifact_dir} a model folder?") from None
    except (OSError, ValueError) as exc:
        raise WheelhouseError(f"cannot read {path}: {exc}") from None
    if not isinstance(run, dict):
        raise WheelhouseError(f"{path} is not a JSON object")
    return run


def service_packages(telemetry: bool = False) -> tuple[str, ...]:
    """What the scoring image installs besides the model's libraries; the exporter only
    with ``telemetry``."""
    return SERVICE_PACKAGES + (TELEMETRY_PACKAGES if telemetry else ())


def service_versions(packages: Iterable[str] = SERVICE_PACKAGES) -> dict[str, str]:
    """This environment's versions of the scoring service's libraries."""
    try:
        return {canonical(name): metadata.version(name) for name in packages}
    except metadata.PackageNotFoundError as exc:
        raise WheelhouseError(f"{exc.name} is not installed in this environment") from None


def requirements_for(
    run: Mapping[str, Any], service: Mapping[str, str] | None = None, *, telemetry: bool = False
) -> list[str]:
    """Pinned requirements (``name==version``, sorted) for a model's scoring image.

    The versions recorded in ``run.json`` win over the service's for a library in both.
    ``telemetry`` adds the Application Insights exporter (when ``service`` is not given).
    """
    pins = {
        canonical(k): v
        for k, v in (service or service_versions(service_packages(telemetry))).items()
    }
    pins.update(recorded_versions(run))
    return sorted(f"{name}=={version}" for name, version in pins.items())


@dataclass(frozen=True)
class Wheelhouse:
    """A folder of wheels and the exact lock (every wheel pinned) to install from it."""

    path: Path
    requirements: tuple[str, ...]  # what was asked for
    lock: tuple[str, ...]  # what was resolved: name==version for every wheel

    @property
    def lock_text(self) -> str:
        return "".join(f"{line}\n" for line in self.lock)

    def version_of(self, name: str) -> str | None:
        for line in self.lock:
            pkg, _, version = line.partition("==")
            if pkg == canonical(name):
                return version
        return None


def environment_constraints(pinned: Iterable[str]) -> list[str]:
    """This environment's versions of every other installed library, as pip constraints.

    They hold the libraries pulled in indirectly (python-dateutil, anyio, ...) to the
    versions the tests ran with, instead of whatever is newest on the index.
    """
    skip = {canonical(line.partition("==")[0]) for line in pinned} | {"pip", "setuptools"}
    found = {canonical(d.metadata["Name"] or ""): d.version for d in metadata.distributions()}
    return sorted(f"{name}=={ver}" for name, ver in found.items() if name and name not in skip)


def wheelhouse_key(requirements: Iterable[str], constraints: Iterable[str] = ()) -> str:
    text = "\n".join([PYTHON_VERSION, *PLATFORMS, *sorted(requirements), "--", *constraints])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _lock_of(folder: Path) -> tuple[str, ...]:
    pins = set()
    for wheel in folder.glob("*.whl"):
        match = _WHEEL.match(wheel.name)
        if match:
            pins.add(f"{canonical(match['name'])}=={match['version']}")
    return tuple(sorted(pins))


def _explain(stderr: str, requirements: Iterable[str]) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    tail = "\n".join((errors or stderr.strip().splitlines())[-4:])
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        wanted = missing.group(1)
        recorded = " (recorded in run.json at training time)" if wanted.startswith(REQUIRED) else ""
        return (
            f"{wanted}{recorded} has no CPython {PYTHON_VERSION} Linux wheel, so the scoring "
            "image cannot run the versions the model was trained with; retrain the model "
            f"under available versions:\n{tail}"
        )
    if "conflict" in stderr.lower() or "ResolutionImpossible" in stderr:
        return f"the pinned versions conflict ({', '.join(requirements)}):\n{tail}"
    return f"pip download failed for {', '.join(requirements)}:\n{tail}"


def _pip_download(
    wanted: Iterable[str], constraints: list[str], dest: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", f"--python-version={PYTHON_VERSION}", "--implementation=cp",
        *(f"--platform={platform}" for platform in PLATFORMS), f"--dest={dest}",
    ]  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("".join(f"{line}\n" for line in constraints))
    try:
        if constraints:
            command.append(f"--constraint={handle.name}")
        logger.info("downloading wheels for %s", " ".join(wanted))
        return subprocess.run([*command, *wanted], capture_output=True, text=True, timeout=timeout)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def build_wheelhouse(
    requirements: Iterable[str],
    cache_dir: Path,
    *,
    pin_indirect: bool = True,
    timeout: float = 900.0,
) -> Wheelhouse:
    """Download (or reuse) the wheels for ``requirements`` into ``cache_dir/wheelhouse/KEY``.

    Args:
        requirements: ``name==version`` pins (see ``requirements_for``).
        cache_dir: Cache root; each requirement list gets its own folder.
        pin_indirect: Hold indirect dependencies to this environment's versions.
        timeout: Seconds pip may take.

    Raises:
        WheelhouseError: A pinned version has no matching wheel, or the pins conflict.
    """
    wanted = tuple(sorted(requirements))
    constraints = environment_constraints(wanted) if pin_indirect else []
    target = cache_dir.resolve() / "wheelhouse" / wheelhouse_key(wanted, constraints)
    if (target / LOCK_FILE).exists():
        return Wheelhouse(target, wanted, _lock_of(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        result = _pip_download(wanted, constraints, staging, timeout)
        if (
            result.returncode != 0
            and constraints
            and "No matching distribution" not in (result.stderr)
        ):
            # Older pins (a model trained long ago) may need older indirect libraries.
            logger.warning("pins conflict with this environment's versions: resolving freely")
            result = _pip_download(wanted, [], staging, timeout)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise WheelhouseError(f"pip download took over {timeout:.0f} s") from None
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise WheelhouseError(_explain(result.stderr, wanted))
    lock = _lock_of(staging)
    for line in wanted:  # pip never swaps a pin, but the image must not rest on "never"
        if line not in lock:
            shutil.rmtree(staging, ignore_errors=True)
            raise WheelhouseError(f"the wheelhouse lacks {line}; it holds {', '.join(lock)}")
    (staging / LOCK_FILE).write_text("".join(f"{pin}\n" for pin in lock), encoding="utf-8")
    try:
        staging.rename(target)
    except OSError:  # another process finished the same list first
        shutil.rmtree(staging, ignore_errors=True)
    return Wheelhouse(target, wanted, _lock_of(target))
