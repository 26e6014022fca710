"""Fixtures for the Docker tests: one engine for the session, a real model folder.

- ``docker_host`` (session): a Docker engine that answers. An engine already running (at
  ``$DOCKER_HOST``, the default socket, or ours under ``.mlops/docker``) is used and left
  running; otherwise ``dockerd`` is started under ``.mlops/docker`` and stopped at the end.
  Skipped, with the reason, only when no engine can run here at all; under CI (``CI`` set)
  that is a failure instead, so a broken engine cannot pass as green.
- ``docker_client`` (session): a client of that engine.
- ``cache_dir`` (session): ``.mlops/cache``, kept between sessions (base image tarball,
  wheelhouses), so only the first session on a machine pays for them.
- ``model_dir`` (session): a model folder written by ``training.train`` on scikit-learn's
  diabetes data (``model.joblib``, ``run.json``, ``metrics.json``, ``golden.json``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from sklearn.datasets import load_diabetes

from backends.local.dockerd import DockerEngine, DockerEngineError
from training.params import TrainingParams
from training.train import train, write_artifacts

STATE = Path(__file__).resolve().parents[3] / ".mlops"


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    engine = DockerEngine(STATE / "docker")
    try:
        host = engine.ensure()
    except DockerEngineError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine: {exc}")
        pytest.skip(f"no Docker engine can run here: {exc}")
    yield host
    if engine.started:
        engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_host, timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return STATE / "cache"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = load_diabetes(as_frame=True).frame
    folder = tmp_path_factory.mktemp("model")
    write_artifacts(train(frame, TrainingParams()), folder)
    return folder
