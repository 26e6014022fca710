"""Fixtures for integration tests: real local services, started once per session.

- ``azurite`` (session; tests/conftest.py): a real Azurite blob service on a free loopback
  port, in memory, started the first time a test asks for it and stopped when the session
  ends. Yields an ``AzuriteInstance`` (``host``, ``port``, ``connection_string``,
  ``endpoint``, ``service``). Skipped, with the reason, only when node or ``azurite-blob``
  is not installed (``make setup`` installs it).
- ``azurite_port`` (session): ``azurite.port`` (an int), for code that sets
  ``MLOPS_AZURITE_PORT``.
- ``lake_containers`` (function): fresh, uniquely named landing/curated/quarantine
  containers in that Azurite, created before the test and deleted after it. Yields a
  ``LakeContainers`` (``landing``, ``curated``, ``quarantine``, ``all``).
- ``datalake`` (function): a ``BlobDataLake`` connected to ``azurite``; use it with the
  names in ``lake_containers``.
- ``lake_settings`` (function): ``Settings`` pointing at ``azurite``, at the fresh
  containers and at a per-test state folder (``tmp_path / "state"``): hand it to code that
  calls ``get_backends(settings)``.
- Docker fixtures (``docker_host``, ``docker_client``, ``cache_dir``): ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.blob_datalake import BlobDataLake
from core.settings import Settings, load_settings
from tests.utils.azurite import AzuriteInstance


@dataclass(frozen=True)
class LakeContainers:
    """Container names made for one test."""

    landing: str
    curated: str
    quarantine: str

    @property
    def all(self) -> tuple[str, str, str]:
        return (self.landing, self.curated, self.quarantine)


@pytest.fixture(scope="session")
def azurite_port(azurite: AzuriteInstance) -> int:
    """The session Azurite's blob port."""
    return azurite.port


@pytest.fixture
def lake_containers(azurite: AzuriteInstance) -> Iterator[LakeContainers]:
    """Fresh landing/curated/quarantine containers, deleted after the test."""
    suffix = secrets.token_hex(4)
    names = LakeContainers(f"landing-{suffix}", f"curated-{suffix}", f"quarantine-{suffix}")
    lake = BlobDataLake(azurite.connection_string)
    lake.ensure_containers(*names.all)
    yield names
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    # Keeps the in-memory emulator small over a long session.
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    for name in names.all:
        with contextlib.suppress(ResourceNotFoundError):
            client.delete_container(name)


@pytest.fixture
def datalake(azurite: AzuriteInstance, lake_containers: LakeContainers) -> BlobDataLake:
    """A BlobDataLake on the session's Azurite (the test's containers already exist)."""
    return BlobDataLake(azurite.connection_string)


@pytest.fixture
def lake_settings(
    azurite: AzuriteInstance, lake_containers: LakeContainers, tmp_path: Path
) -> Settings:
    """Settings for this test: the session's Azurite, fresh containers, a fresh state dir."""
    return load_settings(
        azurite_host=azurite.host,
        azurite_port=azurite.port,
        landing_container=lake_containers.landing,
        curated_container=lake_containers.curated,
        quarantine_container=lake_containers.quarantine,
        state_dir=tmp_path / "state",
    )
