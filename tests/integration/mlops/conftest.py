"""A real local stack, driven through the ``mlops`` command as a user would.

- ``local_stack`` (session): ``mlops up`` run once in an isolated project (its own state
  folder, Azurite and Prefect server on free loopback ports, release target ``process`` so no
  Docker engine is started), shared by ``test_stack.py`` and ``test_cli.py`` (one ~20 s
  Prefect start for both). ``mlops down`` runs at the end; whatever its PID files named is
  then checked and, as a last resort, killed, so nothing outlives the session.
- ``stack`` (function): the same stack, started again first if a test took it down.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.local.azurite import find_azurite_binary
from tests.utils.stack import LocalStack, running_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    if find_azurite_binary() is None:
        pytest.skip("node or azurite-blob is not installed: run `make setup`")
    stack = LocalStack(tmp_path_factory.mktemp("project"))
    with running_stack(stack):
        from backends.blob_datalake import BlobDataLake

        lake = BlobDataLake(stack.settings.blob_connection)
        landing = stack.settings.landing_container
        stack.landing_after_first_up = [ref.name for ref in lake.list(landing)]
        yield stack


@pytest.fixture
def stack(local_stack: LocalStack) -> LocalStack:
    if local_stack.down:
        local_stack.up()
    return local_stack
