"""A released Docker replica writes what it scores to the collected container in Azurite,
with the SAS URL as a read-only file (never in ``docker inspect``), and its stop (SIGTERM
from the engine) writes the open window."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import docker
import httpx
import pytest

from backends.collect_sas import Collection, container_sas_url
from backends.local.docker_image import DockerImageBuilder
from backends.local.docker_target import COLLECT_PATH, DockerTarget
from backends.local.envstate import free_port
from core.interfaces import ReleaseSpec
from tests.utils.azurite import AzuriteInstance
from tests.utils.scoring_collection import CONTAINER, collect_url_file, collected_rows
from training.artifacts import sha256_file

pytestmark = pytest.mark.docker


@pytest.fixture
def release(
    docker_host: str, cache_dir: Path, model_dir: Path, docker_client: docker.DockerClient
) -> Iterator[ReleaseSpec]:
    builder = DockerImageBuilder(docker_host, cache_dir)
    sha = sha256_file(model_dir / "model.joblib")
    image = builder.build("diabetes-ridge", "3", model_dir, uuid.uuid4().hex[:12])
    yield ReleaseSpec("diabetes-ridge", "3", sha, image=image)
    docker_client.images.remove(image, force=True)


def test_a_released_replica_writes_scored_rows_to_azurite(
    docker_host: str, azurite: AzuriteInstance, release: ReleaseSpec, tmp_path: Path
) -> None:
    collect_url_file(azurite.connection_string, tmp_path)  # the container exists
    issue = partial(container_sas_url, azurite.connection_string, CONTAINER, 1)
    env = f"qa{uuid.uuid4().hex[:6]}"  # the environment name is the blob prefix
    target = DockerTarget(
        partial(docker.DockerClient, base_url=docker_host, timeout=120),
        tmp_path / "state",
        {env: free_port()},
        health_timeout=90.0,
        collection=Collection(issue, sample=1.0),
    )
    try:
        endpoint = target.deploy(env, release)
        sas = (tmp_path / "state" / env / "secrets" / "collect_url").read_text()
        assert "sig=" in sas
        for container in target.containers(env):  # two replicas, one writer each
            assert sas not in json.dumps(container.attrs)
            mounts = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
            assert mounts[COLLECT_PATH] is False
        headers = {"Authorization": f"Bearer {endpoint.key}"}
        sent = []
        with httpx.Client(base_url=endpoint.url, timeout=10) as client:
            for i in range(20):
                rid = f"docker-{i}"
                body = {"data": [[0.01 * i] * 10, [0.02] * 10]}
                answer = client.post("/score", json=body, headers={**headers, "X-Request-Id": rid})
                assert answer.status_code == 200
                sent.append((rid, answer.json()["predictions"]))
            stats = client.get("/model", headers=headers).json()["collection"]
        assert stats["rows_collected"] > 0 and stats["env"] == env
    finally:
        target.teardown(env)  # stops the container: SIGTERM, the window is written
    assert not (tmp_path / "state" / env / "secrets").exists()  # the SAS and key copies too
    names, rows = collected_rows(azurite.connection_string, env)
    assert names, "the replica wrote nothing"
    got = {(r.request_id, r.row): r.prediction for r in rows}
    assert len(got) == len(rows) == 40
    assert got == {(rid, i): p for rid, preds in sent for i, p in enumerate(preds)}
    assert {(r.version, r.model) for r in rows} == {("3", "diabetes-ridge")}
