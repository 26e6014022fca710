"""The scoring image's base: pull ``python:3.11-slim``, or build an equivalent from Debian.

Where no image registry is reachable, ``mmdebstrap`` builds a minimal Debian root file
system with Python 3.11 from the same Debian mirror the machine's apt already uses (read
from ``/etc/apt/sources.list*`` at run time, so no mirror is written into this project),
and ``docker import`` turns it into an image. The tarball is cached, so a new engine (or
a deleted image) costs an import of a few seconds, not a rebuild.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import docker
from docker.errors import DockerException, ImageNotFound

from core.interfaces import BackendError

logger = logging.getLogger(__name__)

DEFAULT_BASE = "local/py311-base:bookworm"
PULL_REFERENCE = "python:3.11-slim"
SUITE = "bookworm"  # Debian 12: its python3 is 3.11, the version the wheels are built for
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Docs, manuals and translations are dead weight in a service image.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


class BaseImageError(BackendError):
    """No base image could be pulled or built; the message says why."""


# --------------------------------------------------------------------------- apt sources
def _deb822_paragraphs(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:  # continuation line
                fields[key] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            yield fields


def _one_line_entries(text: str) -> Iterator[dict[str, str]]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        options = ""
        if "[" in line:  # deb [signed-by=... arch=...] URI SUITE COMPONENTS
            head, _, rest = line.partition("[")
            options, _, tail = rest.partition("]")
            line = head + tail
        parts = line.split()
        if len(parts) < 3:
            continue
        entry = {"types": "deb", "uris": parts[1], "suites": parts[2]}
        entry["components"] = " ".join(parts[3:]) or "main"
        for option in options.split():
            name, _, value = option.partition("=")
            if name == "signed-by":
                entry["signed-by"] = value
        yield entry


def debian_sources(suite: str = SUITE, paths: Iterable[Path] = APT_SOURCES) -> str:
    """The machine's apt sources for ``suite`` (and its -updates/-security), as deb822 text.

    Only ``deb`` entries whose suites are ``suite`` or ``suite-*`` are kept, so third-party
    repositories (``nodistro``, ``cloud-sdk-bookworm``) drop out. Returns "" when none match.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".list", ".sources"))
        elif path.is_file():
            files.append(path)
    entries: list[dict[str, str]] = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        parse = _deb822_paragraphs if file.suffix == ".sources" else _one_line_entries
        entries += parse(text)
    paragraphs = []
    for entry in entries:
        if (
            entry.get("enabled", "yes").lower() == "no"
            or "deb" not in entry.get("types", "").split()
        ):
            continue
        suites = [s for s in entry.get("suites", "").split() if s.split("-")[0] == suite]
        if not suites or not entry.get("uris"):
            continue
        lines = [
            "Types: deb",
            f"URIs: {entry['uris']}",
            f"Suites: {' '.join(suites)}",
            f"Components: {entry.get('components') or 'main'}",
        ]
        if entry.get("signed-by") and Path(entry["signed-by"]).exists():
            lines.append(f"Signed-By: {entry['signed-by']}")
        paragraphs.append("\n".join(lines) + "\n")
    return "\n".join(paragraphs)


# --------------------------------------------------------------------------- the image
def image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


def try_pull(client: docker.DockerClient, reference: str, timeout: float = 30.0) -> bool:
    """Pull ``reference``; ``False`` at once if no registry answers (never a long hang)."""
    repository, _, tag = reference.rpartition(":")
    saved = client.api.timeout
    client.api.timeout = timeout  # seconds without any progress message from the engine
    try:
        client.images.pull(repository, tag=tag)
    except (DockerException, OSError) as exc:
        logger.info("cannot pull %s (%s): building a base image instead", reference, exc)
        return False
    finally:
        client.api.timeout = saved
    return True


def rootfs_tarball(cache_dir: Path, suite: str = SUITE, timeout: float = 1200.0) -> Path:
    """Build (or reuse) the cached ``mmdebstrap`` tarball of a minimal Debian with Python."""
    sources = debian_sources(suite)
    key_text = "\n".join([suite, *PACKAGES, *DPKG_OPTIONS, sources])
    tarball = (
        cache_dir / "base" / f"{suite}-{hashlib.sha256(key_text.encode()).hexdigest()[:12]}.tar"
    )
    if tarball.exists():
        return tarball
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise BaseImageError(
            f"cannot pull {PULL_REFERENCE} and mmdebstrap is not installed to build a base "
            "image: apt-get install mmdebstrap (deployments/local/install-system.sh does it)"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial, log_path = tarball.with_suffix(".partial.tar"), tarball.with_suffix(".log")
    command = [mmdebstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    command += [f"--dpkgopt={option}" for option in DPKG_OPTIONS] + [suite, str(partial)]
    if sources:
        mirror = tarball.with_suffix(".sources")
        mirror.write_text(sources, encoding="utf-8")
        command.append(str(mirror))
    else:
        logger.warning("no apt source for %s on this machine: mmdebstrap's default", suite)
    logger.info("building a %s root file system with mmdebstrap (log: %s)", suite, log_path)
    with open(log_path, "wb") as log:
        try:
            code = subprocess.run(command, stdout=log, stderr=log, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0:
        partial.unlink(missing_ok=True)
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise BaseImageError(f"mmdebstrap failed ({code}); log {log_path}:\n{tail}")
    partial.replace(tarball)
    return tarball


def import_tarball(client: docker.DockerClient, tarball: Path, name: str) -> None:
    """``docker import`` a root file system tarball as ``name``."""
    repository, _, tag = name.rpartition(":")
    with open(tarball, "rb") as data:
        client.api.import_image(
            src=data, repository=repository, tag=tag, changes=list(IMAGE_CHANGES)
        )
    if not image_exists(client, name):
        raise BaseImageError(f"docker import of {tarball} did not create {name}")


def ensure_base_image(
    client: docker.DockerClient,
    name: str = DEFAULT_BASE,
    cache_dir: Path = Path(".mlops/cache"),
    *,
    pull: str | None = PULL_REFERENCE,
    pull_timeout: float = 30.0,
) -> str:
    """Return a base image with Python 3.11 and ``venv``: existing, pulled, or built.

    Args:
        client: A client of the engine that will build the scoring images.
        name: The name of the built base image.
        cache_dir: Where the root file system tarball is cached.
        pull: The image to pull before building one (``None``: never pull).
        pull_timeout: Seconds a pull may go without progress before it is abandoned.

    Returns:
        The image reference to pass as the ``BASE_IMAGE`` build argument.

    Raises:
        BaseImageError: Neither pulling nor building worked.
    """
    if image_exists(client, name):
        return name
    if pull is not None and (image_exists(client, pull) or try_pull(client, pull, pull_timeout)):
        return pull
    tarball = rootfs_tarball(cache_dir.resolve())
    logger.info("importing %s as %s", tarball.name, name)
    import_tarball(client, tarball, name)
    return name
