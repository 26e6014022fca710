"""Telemetry where the service runs: the scoring image built with the Application Insights
exporter (the project has a connection string), deployed by the Docker target with the
connection string as a mounted secret file, sends a request span and a log record carrying
the client's request id to a local ingestion endpoint over real HTTP. The plain image of the
same model and code has no exporter at all, and its own tag."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from backends.local.docker_image import LABEL_TELEMETRY, DockerImageBuilder
from backends.local.docker_target import DockerTarget
from backends.local.envstate import free_port
from core.interfaces import ReleaseSpec
from tests.utils.appinsights import ingestion_server, wait_for_request
from training.artifacts import sha256_file

pytestmark = pytest.mark.docker

CODE_VERSION = "0123456789abcdef"
MODEL = "diabetes-ridge"
ROW = [0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]
# True when some folder on the image's sys.path holds the azure/monitor package.
HAS_EXPORTER = (
    "import pathlib, sys; "
    "print(any((pathlib.Path(p) / 'azure' / 'monitor').is_dir() for p in sys.path))"
)


@pytest.fixture(scope="module")
def images(
    docker_host: str, cache_dir: Path, model_dir: Path, docker_client: docker.DockerClient
) -> Iterator[dict[bool, str]]:
    """The plain and the telemetry image of one model version (fresh, removed afterwards)."""
    version = f"t{uuid.uuid4().hex[:8]}"
    built = {
        on: DockerImageBuilder(docker_host, cache_dir, telemetry=on).build(
            MODEL, version, model_dir, CODE_VERSION
        )
        for on in (False, True)
    }
    yield built
    for tag in built.values():
        docker_client.images.remove(tag, force=True)


def _has_exporter(docker_client: docker.DockerClient, image: str) -> bool:
    out = docker_client.containers.run(
        image, ["python", "-c", HAS_EXPORTER], network_mode="none", remove=True
    )
    return bytes(out).strip() == b"True"


def test_only_the_telemetry_image_has_the_exporter(
    images: dict[bool, str], docker_client: docker.DockerClient
) -> None:
    plain, telemetry = images[False], images[True]
    assert telemetry == plain + "-otel"  # never one tag for both
    assert docker_client.images.get(plain).labels[LABEL_TELEMETRY] == "off"
    assert docker_client.images.get(telemetry).labels[LABEL_TELEMETRY] == "azure-monitor"
    assert not _has_exporter(docker_client, plain)
    assert _has_exporter(docker_client, telemetry)


def test_a_container_sends_its_request_span_and_log_to_application_insights(
    images: dict[bool, str],
    docker_host: str,
    model_dir: Path,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    release = ReleaseSpec(MODEL, "1", sha256_file(model_dir / "model.joblib"), image=images[True])
    rid = f"otel-docker-{uuid.uuid4().hex[:8]}"
    with ingestion_server() as ingestion:  # on 127.0.0.1: replicas share the host network
        target = DockerTarget(
            lambda: docker.DockerClient(base_url=docker_host, timeout=120),
            tmp_path / "state",
            {"qa": free_port()},
            health_timeout=90.0,
            appinsights_connection_string=ingestion.connection_string,
        )
        try:
            endpoint = target.deploy("qa", release)
            [container] = target.containers("qa")
            # A secret: a mounted file, never a variable `docker inspect` shows.
            assert ingestion.connection_string not in " ".join(container.attrs["Config"]["Env"])
            response = httpx.post(
                endpoint.url + "/score",
                json={"data": [ROW]},
                headers={"Authorization": f"Bearer {endpoint.key}", "X-Request-Id": rid},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-request-id"] == rid
            spans, logs = wait_for_request(ingestion, rid)
            output = bytes(container.logs()).decode(errors="replace")
        finally:
            target.teardown("qa")
    assert len(spans) == 1, (ingestion.envelopes, output)
    span = spans[0]["data"]["baseData"]
    assert span["responseCode"] == "200" and span["success"] is True
    assert logs and logs[0]["data"]["baseData"]["message"] == "request", ingestion.envelopes
    assert logs[0]["tags"]["ai.operation.id"] == spans[0]["tags"]["ai.operation.id"]
    assert spans[0]["tags"]["ai.cloud.role"] == f"mlops.scoring-{MODEL}"  # namespace.name
    assert ingestion.connection_string not in output  # never logged
