"""AcrImageBuilder on a real engine, pushing to a fake registry on 127.0.0.1.

There is no image registry here and no internet: ``tests/utils/oci_registry.py`` serves the
Docker Registry HTTP API v2 (plain HTTP; the engine treats 127.0.0.0/8 as insecure) and
authenticates as ACR does: a 401 with a Bearer challenge, access tokens from its
``/oauth2/token`` for the admin user or the null-GUID user holding a refresh token from
``/oauth2/exchange`` (an Entra ID token). The exchange's request itself is asserted at the
HTTP boundary in tests/unit/backends/azure/test_acr_builder.py.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from azure.core.credentials import AccessToken
from docker.errors import ImageNotFound

from backends.azure.acr import AcrImageBuilder, ImagePushError, RegistryAuthError
from backends.local.docker_image import DockerImageBuilder, image_tag
from tests.utils.oci_registry import FakeRegistry
from training.artifacts import MODEL_FILE, sha256_file

pytestmark = pytest.mark.docker

CODE_VERSION = "fedcba9876543210"
MODEL = "diabetes-ridge"
REPOSITORY = "mlops/diabetes-ridge"
USER = "acr-admin"
PASSWORD = f"pa55-{secrets.token_hex(12)}"
AAD_TOKEN = f"eyJ-aad-{secrets.token_hex(12)}"  # an Entra ID access token the registry accepts


class EntraId:
    """A credential handing out the Entra ID token the registry knows (``ci@tenant``)."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(AAD_TOKEN, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry(USER, PASSWORD, aad_tokens={AAD_TOKEN: "ci@tenant"}) as fake:
        yield fake


@pytest.fixture(scope="module")
def local_builder(docker_host: str, cache_dir: Path) -> DockerImageBuilder:
    return DockerImageBuilder(docker_host, cache_dir)


@pytest.fixture(scope="module")
def local_tag(version: str, model_dir: Path) -> str:
    """The local image the builder makes of ``model_dir`` as ``version``."""
    return image_tag(MODEL, version, CODE_VERSION, sha256_file(model_dir / MODEL_FILE))


@pytest.fixture(scope="module")
def version() -> str:
    return f"acr{uuid.uuid4().hex[:8]}"  # a fresh image each session: the build really runs


@pytest.fixture(scope="module")
def pushed(
    local_builder: DockerImageBuilder,
    registry: FakeRegistry,
    model_dir: Path,
    version: str,
    docker_client: docker.DockerClient,
    local_tag: str,
) -> Iterator[str]:
    builder = AcrImageBuilder(local_builder, registry.host, username=USER, password=PASSWORD)
    try:
        yield builder.build(MODEL, version, model_dir, CODE_VERSION)
    finally:
        tag = local_tag.rpartition(":")[2]
        for name in (f"{registry.host}/{REPOSITORY}:{tag}", local_tag):
            try:
                docker_client.images.remove(name, force=True)
            except ImageNotFound:
                pass


def test_push_delivers_the_manifest_and_every_blob(
    pushed: str,
    registry: FakeRegistry,
    version: str,
    docker_client: docker.DockerClient,
    local_tag: str,
) -> None:
    local = docker_client.images.get(local_tag)
    tag = local_tag.rpartition(":")[2]

    # The digest form, naming the registry and repository.
    assert pushed.startswith(f"{registry.host}/{REPOSITORY}@sha256:")
    manifest = registry.manifest(REPOSITORY, tag)
    assert manifest is not None, f"no manifest for {REPOSITORY}:{tag} in the registry"
    assert pushed == f"{registry.host}/{REPOSITORY}@{manifest.digest}"
    assert registry.manifest(REPOSITORY, manifest.digest) is manifest

    body = manifest.json()
    config = body["config"]["digest"]
    layers = [layer["digest"] for layer in body["layers"]]
    assert config == local.id  # the config blob is the image itself
    assert len(layers) == len(local.attrs["RootFS"]["Layers"]) > 0
    assert all(registry.has_blob(REPOSITORY, digest) for digest in [config, *layers])
    assert pushed in local.attrs["RepoDigests"]  # what the engine recorded

    # Every request the registry accepted carried a token issued to the configured user,
    # after the Bearer challenge sent the engine to /oauth2/token.
    accepted = [r for r in registry.state.requests if r.status != 401]
    assert accepted and {r.user for r in accepted} == {USER}
    assert registry.received("GET", r"^/oauth2/token$")
    assert {r.status for r in registry.received("GET", r"^/v2/$")} >= {401}


def test_second_build_and_push_reuses_the_image_and_the_upload(
    pushed: str,
    local_builder: DockerImageBuilder,
    registry: FakeRegistry,
    model_dir: Path,
    version: str,
    docker_client: docker.DockerClient,
    local_tag: str,
) -> None:
    image_id = docker_client.images.get(local_tag).id
    uploads = len(registry.received("POST", r"/blobs/uploads/?$"))
    manifest_puts = len(registry.received("PUT", r"/manifests/"))
    builder = AcrImageBuilder(local_builder, registry.host, username=USER, password=PASSWORD)

    started = time.monotonic()
    assert builder.build(MODEL, version, model_dir, CODE_VERSION) == pushed
    assert time.monotonic() - started < 30

    assert docker_client.images.get(local_tag).id == image_id
    assert len(registry.received("POST", r"/blobs/uploads/?$")) == uploads  # nothing re-sent
    assert len(registry.received("PUT", r"/manifests/")) == manifest_puts  # push skipped
    assert registry.received("HEAD", r"/manifests/") or registry.received("GET", r"/manifests/")


def test_a_wrong_password_is_a_backend_error_without_the_password(
    pushed: str,
    local_builder: DockerImageBuilder,
    registry: FakeRegistry,
    model_dir: Path,
    version: str,
    caplog: pytest.LogCaptureFixture,
    local_tag: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = f"wrong-{secrets.token_hex(12)}"
    builder = AcrImageBuilder(local_builder, registry.host, username=USER, password=wrong)
    refused = len([r for r in registry.state.requests if r.status == 401])
    uploads = len(registry.received("POST", r"/blobs/uploads/?$"))

    started = time.monotonic()
    with pytest.raises(ImagePushError) as caught:
        builder.build(MODEL, version, model_dir, CODE_VERSION)
    # Refused by the lookup before the push: no minute of per-layer retries by the engine.
    assert isinstance(caught.value, RegistryAuthError)
    assert time.monotonic() - started < 20
    assert len(registry.received("POST", r"/blobs/uploads/?$")) == uploads

    message = str(caught.value)
    logging.getLogger(__name__).info("refused as expected: %s", message)
    tag = local_tag.rpartition(":")[2]
    assert registry.host in message and f"{REPOSITORY}:{tag}" in message
    assert wrong not in message and PASSWORD not in message
    assert wrong not in caplog.text and PASSWORD not in caplog.text
    assert len([r for r in registry.state.requests if r.status == 401]) > refused


def test_a_push_refused_in_the_stream_is_a_backend_error(
    pushed: str,
    local_builder: DockerImageBuilder,
    registry: FakeRegistry,
    model_dir: Path,
    version: str,
    docker_client: docker.DockerClient,
    local_tag: str,
) -> None:
    # The credentials pass the lookup and the layers go up, but the tag is locked: the
    # engine's push answers 200 and reports the registry's 403 inside its stream.
    tag = local_tag.rpartition(":")[2]
    registry.lock_tag("locked/scoring", tag)
    builder = AcrImageBuilder(
        local_builder, registry.host, username=USER, password=PASSWORD, repository="locked/scoring"
    )
    try:
        with pytest.raises(ImagePushError) as caught:
            builder.build(MODEL, version, model_dir, CODE_VERSION)
    finally:
        docker_client.images.remove(f"{registry.host}/locked/scoring:{tag}", force=True)

    message = str(caught.value)
    logging.getLogger(__name__).info("refused as expected: %s", message)
    assert not isinstance(caught.value, RegistryAuthError)
    assert f"{registry.host}/locked/scoring:{tag}" in message and "locked" in message
    assert PASSWORD not in message
    assert registry.received("PUT", rf"^/v2/locked/scoring/manifests/{tag}$")
    assert registry.manifest("locked/scoring", tag) is None


def test_an_entra_id_identity_pushes_with_an_acr_refresh_token(
    pushed: str,
    local_builder: DockerImageBuilder,
    registry: FakeRegistry,
    model_dir: Path,
    version: str,
    docker_client: docker.DockerClient,
    caplog: pytest.LogCaptureFixture,
    local_tag: str,
) -> None:
    # As in Azure: Entra ID token -> /oauth2/exchange -> refresh token -> the engine logs in
    # as the null GUID with it -> /oauth2/token -> Bearer access tokens for the push.
    caplog.set_level(logging.DEBUG)
    builder = AcrImageBuilder(
        local_builder,
        registry.host,
        credential=EntraId(),
        scheme="http",
        repository="entra/scoring",
    )
    tag = local_tag.rpartition(":")[2]
    try:
        reference = builder.build(MODEL, version, model_dir, CODE_VERSION)
    finally:
        docker_client.images.remove(f"{registry.host}/entra/scoring:{tag}", force=True)

    manifest = registry.manifest("entra/scoring", tag)
    assert manifest is not None and reference == f"{registry.host}/entra/scoring@{manifest.digest}"
    assert [r.status for r in registry.received("POST", r"^/oauth2/exchange$")] == [200]
    pushes = [r for r in registry.state.requests if r.path.startswith("/v2/entra/")]
    assert pushes and {r.user for r in pushes if r.status != 401} == {"ci@tenant"}
    assert AAD_TOKEN not in caplog.text
