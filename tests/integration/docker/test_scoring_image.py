"""The scoring image, end to end on a real engine: base image, build, reuse, refusal, run."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import joblib
import numpy as np
import pytest
from docker.errors import ImageNotFound
from sklearn.datasets import load_diabetes

from backends.local.base_image import DEFAULT_BASE, ensure_base_image
from backends.local.docker_image import DockerImageBuilder, ImageBuildError, image_tag
from tests.utils.net import free_port
from training.artifacts import MODEL_FILE, sha256_file
from training.params import TrainingParams
from training.train import train, write_artifacts

pytestmark = pytest.mark.docker

CODE_VERSION = "0123456789abcdef"


@pytest.fixture(scope="module")
def builder(docker_host: str, cache_dir: Path) -> DockerImageBuilder:
    return DockerImageBuilder(docker_host, cache_dir)


@pytest.fixture(scope="module")
def image(
    builder: DockerImageBuilder, model_dir: Path, docker_client: docker.DockerClient
) -> Iterator[str]:
    # A fresh version each session: the build really runs (only its first stage is cached).
    tag = builder.build("diabetes-ridge", f"t{uuid.uuid4().hex[:8]}", model_dir, CODE_VERSION)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_base_image_is_ensured_idempotently(
    docker_client: docker.DockerClient, cache_dir: Path
) -> None:
    name = ensure_base_image(docker_client, cache_dir=cache_dir)
    assert name in (DEFAULT_BASE, "python:3.11-slim")
    started = time.monotonic()
    assert ensure_base_image(docker_client, cache_dir=cache_dir) == name
    assert time.monotonic() - started < 2
    out = docker_client.containers.run(
        name, ["python3", "-c", "import sys, venv; print(sys.version_info[:2])"],
        network_mode="none", remove=True,
    )  # fmt: skip
    assert out.strip() == b"(3, 11)"


def test_image_is_labelled_and_runs_as_non_root(
    image: str, model_dir: Path, docker_client: docker.DockerClient
) -> None:
    found = docker_client.images.get(image)
    sha = sha256_file(model_dir / "model.joblib")
    assert image.startswith("mlops/diabetes-ridge:t") and image.endswith(f"-{sha[:8]}-0123456789ab")
    assert found.labels["mlops.model.sha256"] == sha
    assert found.labels["mlops.model.name"] == "diabetes-ridge"
    assert found.labels["mlops.code.version"] == CODE_VERSION
    assert found.attrs["Config"]["User"] == "10001:10001"
    assert "SCORING_API_KEY" not in " ".join(found.attrs["Config"]["Env"])
    out = docker_client.containers.run(image, ["id", "-u"], network_mode="none", remove=True)
    assert out.strip() == b"10001"


def test_rebuild_is_reused(
    builder: DockerImageBuilder, image: str, model_dir: Path, docker_client: docker.DockerClient
) -> None:
    before = docker_client.images.get(image).id
    version = image.split(":")[1].split("-", 1)[0]
    started = time.monotonic()
    assert builder.build("diabetes-ridge", version, model_dir, CODE_VERSION) == image
    assert time.monotonic() - started < 10
    assert docker_client.images.get(image).id == before


def test_two_stacks_on_one_engine_never_share_an_image(
    image: str, docker_host: str, cache_dir: Path, model_dir: Path, tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    # Another stack (its own root and registry) on the same engine: its version of the same
    # name and number is another model. Before, its build re-tagged the first stack's image.
    version = image.split(":")[1].split("-", 1)[0]
    frame = load_diabetes(as_frame=True).frame.sample(frac=0.8, random_state=1)
    other = tmp_path / "other-stack" / "registry" / "diabetes-ridge" / version
    write_artifacts(train(frame, TrainingParams()), other)
    assert sha256_file(other / MODEL_FILE) != sha256_file(model_dir / MODEL_FILE)
    second = DockerImageBuilder(docker_host, cache_dir)

    tag = second.build("diabetes-ridge", version, other, CODE_VERSION)
    try:
        assert tag != image
        labels = {t: docker_client.images.get(t).labels["mlops.model.sha256"] for t in (tag, image)}
        assert labels == {
            tag: sha256_file(other / MODEL_FILE),
            image: sha256_file(model_dir / MODEL_FILE),  # still the first stack's model
        }
    finally:
        docker_client.images.remove(tag, force=True)


def test_model_loads_offline_with_the_training_versions(
    image: str, model_dir: Path, docker_client: docker.DockerClient
) -> None:
    run = json.loads((model_dir / "run.json").read_text())
    script = (
        "import json, joblib, sklearn, numpy;"
        "m = joblib.load('/model/model.joblib');"
        "print(json.dumps([sklearn.__version__, numpy.__version__,"
        " m.predict(numpy.zeros((1, 10))).tolist()]))"
    )
    out = docker_client.containers.run(
        image, ["python", "-c", script], network_mode="none", remove=True
    )
    sklearn_version, numpy_version, prediction = json.loads(out)
    assert sklearn_version == run["versions"]["scikit-learn"]
    assert numpy_version == run["versions"]["numpy"]
    expected = joblib.load(model_dir / "model.joblib").predict(np.zeros((1, 10)))
    assert prediction == pytest.approx(expected.tolist())


def test_sklearn_version_mismatch_fails_the_build(
    builder: DockerImageBuilder, model_dir: Path, tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:  # fmt: skip
    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    run = json.loads((bad / "run.json").read_text())
    run["versions"]["scikit-learn"] = "0.0.7"
    (bad / "run.json").write_text(json.dumps(run))
    with pytest.raises(ImageBuildError, match=r"scikit-learn==0\.0\.7 \(recorded in run\.json"):
        builder.build("diabetes-ridge", "mismatch", bad, CODE_VERSION)
    with pytest.raises(ImageNotFound):
        docker_client.images.get(
            image_tag("diabetes-ridge", "mismatch", CODE_VERSION, sha256_file(bad / MODEL_FILE))
        )


def test_run_json_without_versions_fails_the_build(
    builder: DockerImageBuilder, model_dir: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    (bad / "run.json").write_text("{}")
    with pytest.raises(ImageBuildError, match="records no library versions"):
        builder.build("diabetes-ridge", "noversions", bad, CODE_VERSION)


def test_service_answers_on_the_host_network(
    image: str, docker_client: docker.DockerClient
) -> None:
    port = free_port()
    container = docker_client.containers.run(
        image,
        detach=True,
        network_mode="host",
        # The image's own probe, probed every second instead of every 10 s.
        healthcheck={"interval": 1_000_000_000},
        environment={
            "SCORING_API_KEY": uuid.uuid4().hex,
            "SCORING_HOST": "127.0.0.1",
            "SCORING_PORT": str(port),
        },
    )
    try:
        status, deadline = 0, time.monotonic() + 60
        while status != 200 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    status = reply.status
            except OSError:
                time.sleep(0.2)
        assert status == 200, container.logs()[-2000:].decode(errors="replace")
        # prometheus-client is in the image: the replica serves its metrics.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert reply.status == 200
            assert b"scoring_model_info{" in reply.read()
        health = "starting"
        while health == "starting" and time.monotonic() < deadline:
            time.sleep(1)
            container.reload()
            health = container.attrs["State"]["Health"]["Status"]
        assert health == "healthy"
    finally:
        container.remove(force=True)
