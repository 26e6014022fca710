"""get_backends: the one switch between the local and the Azure profile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from backends import Backends, get_backends
from backends.blob_datalake import BlobDataLake
from backends.local.compute import REPO_ROOT, SubprocessCompute
from backends.local.registry import LocalModelRegistry
from core.interfaces import Compute, DataLake, ModelRegistry
from core.settings import Settings


def test_local_profile(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", azurite_port=12345)

    backends = get_backends(settings)

    assert isinstance(backends, Backends)
    assert isinstance(backends.datalake, BlobDataLake) and isinstance(backends.datalake, DataLake)
    assert backends.datalake.endpoint == "http://127.0.0.1:12345/devstoreaccount1"
    assert isinstance(backends.compute, SubprocessCompute) and isinstance(backends.compute, Compute)
    assert backends.compute.jobs_dir == settings.jobs_path
    assert isinstance(backends.registry, LocalModelRegistry)
    assert isinstance(backends.registry, ModelRegistry)
    assert backends.registry.root == settings.registry_path
    # Building them touches nothing: no folders, no connections.
    assert not (tmp_path / "state").exists()


def test_importing_backends_loads_no_sdk() -> None:
    code = (
        "import sys, backends, core.interfaces; "
        "print(sorted(m for m in sys.modules if m.startswith(('azure', 'prefect'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_local_batch_scoring_runs_jobs_beside_training_jobs(tmp_path: Path) -> None:
    from backends import get_batch_scoring
    from backends.local.batch import SubprocessBatchScoring
    from core.interfaces import BatchScoring

    settings = Settings(state_dir=tmp_path / "state", azurite_port=12345)
    backends = get_backends(settings)

    batch = get_batch_scoring(settings, backends)

    assert isinstance(batch, SubprocessBatchScoring) and isinstance(batch, BatchScoring)
    assert batch.datalake is backends.datalake
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("release_target", ["docker", "process"])
def test_a_connection_string_reaches_the_local_image_and_replicas(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, release_target: str
) -> None:
    from backends import get_release_backends
    from backends.local.dockerd import DockerEngine

    # No engine is contacted: the builder and the target connect on first use.
    monkeypatch.setattr(DockerEngine, "ensure", lambda self: "unix:///nonexistent.sock")
    secret = "InstrumentationKey=0000;IngestionEndpoint=http://127.0.0.1:1/"
    for connection_string in (secret, None):
        settings = Settings(
            state_dir=tmp_path / "state",
            release_target=release_target,  # type: ignore[arg-type]
            appinsights_connection_string=SecretStr(connection_string)
            if connection_string
            else None,
        )
        release: Any = get_release_backends(settings)
        assert release.kind == release_target
        assert release.target.appinsights_connection_string == connection_string
        if release_target == "docker":
            assert release.builder.telemetry is (connection_string is not None)
