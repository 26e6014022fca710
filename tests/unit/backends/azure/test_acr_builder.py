"""AcrImageBuilder's registry half without an engine: the Entra ID -> ACR token exchange at
the HTTP boundary (``RecordingTransport``), credentials handed to the engine, and how the
engine's push stream is read. The real push runs in tests/integration/docker/test_acr_push.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from backends.azure.acr import (
    ARM_SCOPE,
    NULL_GUID,
    AcrImageBuilder,
    ImagePushError,
    RegistryAuthError,
    acr_refresh_token,
    read_push_stream,
)
from backends.local.docker_image import DockerImageBuilder, ImageBuildError
from core.interfaces import BackendError, ImageBuilder

SERVER = "myacr.azurecr.io"
EXCHANGE = r"^https://myacr\.azurecr\.io/oauth2/exchange$"
AAD_TOKEN = "eyJ-aad-access-token-0123456789"
REFRESH = "eyJ-acr-refresh-token-9876543210"
DIGEST = "sha256:" + "ab" * 32


class AadCredential:
    """Wraps the shared ``FakeCredential``: a recognisable token, and the scopes asked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(AAD_TOKEN, self.inner.get_token(*scopes).expires_on)


class FailingCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")


@pytest.fixture
def aad(credential: Any) -> AadCredential:
    return AadCredential(credential)


def _local_builder(tmp_path: Path) -> DockerImageBuilder:
    return DockerImageBuilder("unix:///nonexistent/docker.sock", tmp_path)  # never contacted


# --------------------------------------------------------------------------- exchange
def test_exchange_posts_the_documented_form_and_returns_the_refresh_token(
    transport: Any, aad: AadCredential, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport.route("POST", EXCHANGE, {"refresh_token": REFRESH})

    assert acr_refresh_token(SERVER, aad, transport=transport) == REFRESH

    [sent] = transport.requests
    assert (sent.method, sent.url) == ("POST", f"https://{SERVER}/oauth2/exchange")
    assert sent.body == (
        f"grant_type=access_token&service={SERVER}&access_token={AAD_TOKEN}".encode()
    )
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in sent.headers  # the token travels in the body only
    assert aad.scopes == [(ARM_SCOPE,)] and ARM_SCOPE == "https://management.azure.com/.default"
    assert AAD_TOKEN not in caplog.text and REFRESH not in caplog.text


def test_exchange_sends_the_tenant_and_another_audience_when_given(
    transport: Any, aad: AadCredential
) -> None:
    transport.route("POST", EXCHANGE, {"refresh_token": REFRESH})
    scope = "https://containerregistry.azure.net/.default"

    acr_refresh_token(SERVER, aad, tenant="tenant-0001", aad_scope=scope, transport=transport)

    [sent] = transport.requests
    assert sent.body.decode() == (
        f"grant_type=access_token&service={SERVER}&tenant=tenant-0001&access_token={AAD_TOKEN}"
    )
    assert aad.scopes == [(scope,)]


def test_a_refused_exchange_is_a_clear_error_without_the_token(
    transport: Any, aad: AadCredential
) -> None:
    # A server that echoes the form back: the message must still not carry the token.
    def refuse(request: Any) -> Any:
        body = {"errors": [{"code": "UNAUTHORIZED", "message": request.body.decode()}]}
        return transport.Reply(401, body)

    transport.route("POST", EXCHANGE, refuse)

    with pytest.raises(RegistryAuthError) as caught:
        acr_refresh_token(SERVER, aad, transport=transport)

    message = str(caught.value)
    assert isinstance(caught.value, BackendError)
    assert SERVER in message and "401" in message and "UNAUTHORIZED" in message
    assert AAD_TOKEN not in message and AAD_TOKEN not in repr(caught.value)
    assert caught.value.__context__ is None  # nothing chained that could hold the form
    assert len(transport.requests) == 1  # a 401 is not retried


def test_an_answer_without_a_refresh_token_is_an_error(transport: Any, aad: AadCredential) -> None:
    transport.route("POST", EXCHANGE, {"access_token": "not-what-was-asked"})

    with pytest.raises(RegistryAuthError, match="without a refresh_token"):
        acr_refresh_token(SERVER, aad, transport=transport)


def test_no_entra_id_token_is_an_error_naming_the_registry(transport: Any) -> None:
    with pytest.raises(RegistryAuthError, match=f"Entra ID token .* for ACR {SERVER}"):
        acr_refresh_token(SERVER, FailingCredential(), transport=transport)
    assert transport.requests == []


# --------------------------------------------------------------------------- builder
def test_the_builder_hands_the_engine_the_refresh_token_as_null_guid_password(
    transport: Any, aad: AadCredential, tmp_path: Path
) -> None:
    transport.route("POST", EXCHANGE, {"refresh_token": REFRESH})
    builder = AcrImageBuilder(_local_builder(tmp_path), SERVER, credential=aad, transport=transport)

    assert isinstance(builder, ImageBuilder)
    assert builder.auth_config() == {
        "username": NULL_GUID,
        "password": REFRESH,
        "serveraddress": SERVER,
    }
    assert NULL_GUID == "00000000-0000-0000-0000-000000000000"
    assert REFRESH not in repr(builder) and AAD_TOKEN not in repr(builder)


def test_a_plain_login_needs_no_exchange(transport: Any, tmp_path: Path) -> None:
    builder = AcrImageBuilder(
        _local_builder(tmp_path), SERVER, username="acr-admin", password="pa55-word-123"
    )

    assert builder.auth_config() == {
        "username": "acr-admin",
        "password": "pa55-word-123",
        "serveraddress": SERVER,
    }
    assert transport.requests == []
    assert "pa55-word-123" not in repr(builder)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"username": "u"}, {"credential": object(), "username": "u", "password": "p"}],
)
def test_exactly_one_login_mode(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="either credential or both username and password"):
        AcrImageBuilder(_local_builder(tmp_path), SERVER, **kwargs)


@pytest.mark.parametrize("server", ["", "https://myacr.azurecr.io", "myacr.azurecr.io/x"])
def test_login_server_is_a_host(tmp_path: Path, server: str) -> None:
    with pytest.raises(ValueError, match="login_server"):
        AcrImageBuilder(_local_builder(tmp_path), server, username="u", password="p")


def test_remote_reference_keeps_the_local_repository_unless_one_is_given(tmp_path: Path) -> None:
    local = "mlops/diabetes-ridge:3-0123456789ab"
    default = AcrImageBuilder(_local_builder(tmp_path), SERVER, username="u", password="p")
    shared = AcrImageBuilder(
        _local_builder(tmp_path), SERVER, username="u", password="p", repository="scoring"
    )

    assert default.remote_reference(local) == (f"{SERVER}/mlops/diabetes-ridge", "3-0123456789ab")
    assert shared.remote_reference(local) == (f"{SERVER}/scoring", "3-0123456789ab")
    with pytest.raises(ValueError, match="repository"):
        AcrImageBuilder(
            _local_builder(tmp_path), SERVER, username="u", password="p", repository="A"
        )


# --------------------------------------------------------------------------- push stream
PROGRESS: list[dict[str, Any]] = [
    {"status": "The push refers to repository [myacr.azurecr.io/mlops/diabetes-ridge]"},
    {"status": "Preparing", "progressDetail": {}, "id": "5f70bf18a086"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 2048}, "id": "5f70bf18a086"},
    {"status": "Pushed", "progressDetail": {}, "id": "5f70bf18a086"},
]


def test_the_digest_comes_from_the_aux_item() -> None:
    items: list[dict[str, Any]] = [
        *PROGRESS,
        {"status": f"3-0123456789ab: digest: {DIGEST} size: 1573"},
        {"progressDetail": {}, "aux": {"Tag": "3-0123456789ab", "Digest": DIGEST, "Size": 1573}},
    ]
    assert read_push_stream(items, "r:t") == DIGEST


def test_the_digest_status_line_is_enough_without_aux() -> None:
    items: list[dict[str, Any]] = [
        *PROGRESS,
        {"status": f"3-0123456789ab: digest: {DIGEST} size: 1573"},
    ]
    assert read_push_stream(items, "r:t") == DIGEST
    assert read_push_stream(PROGRESS, "r:t") is None


@pytest.mark.parametrize(
    "error",
    [
        {"errorDetail": {"message": "unauthorized: authentication required"}, "error": "x"},
        {"error": "unauthorized: authentication required"},
    ],
)
def test_an_error_item_fails_the_push_even_if_the_stream_ends_normally(
    error: dict[str, Any],
) -> None:
    # The engine answered 200: the failure is only in the stream, then it just ends.
    items: list[dict[str, Any]] = [
        *PROGRESS[:2],
        error,
        {"status": "Pushed", "progressDetail": {}, "id": "5f70bf18a086"},
    ]
    with pytest.raises(ImagePushError, match="unauthorized: authentication required") as caught:
        read_push_stream(items, "myacr.azurecr.io/mlops/diabetes-ridge:3")
    assert isinstance(caught.value, ImageBuildError) and isinstance(caught.value, BackendError)
    assert "myacr.azurecr.io/mlops/diabetes-ridge:3" in str(caught.value)


def test_an_error_after_the_digest_still_fails() -> None:
    items: list[dict[str, Any]] = [{"aux": {"Digest": DIGEST}}, {"error": "blob upload unknown"}]
    with pytest.raises(ImagePushError, match="blob upload unknown"):
        read_push_stream(items, "r:t")


@pytest.mark.parametrize(
    ("status", "explanation"),
    [
        (401, "unauthorized: authentication required"),
        # Behind ACR's Bearer challenge the engine reports a refused token request as a 500.
        (500, 'Head "https://myacr.azurecr.io/v2/mlops/m/manifests/1": unauthorized'),
    ],
)
def test_a_refused_lookup_fails_before_pushing(
    tmp_path: Path, status: int, explanation: str
) -> None:
    import requests
    from docker.errors import APIError

    response = requests.Response()
    response.status_code = status
    error = APIError("refused", response=response, explanation=explanation)

    class Images:
        def get_registry_data(self, reference: str, auth_config: Any) -> Any:
            raise error

    class Client:
        images = Images()

    builder = AcrImageBuilder(_local_builder(tmp_path), SERVER, username="u", password="pw-1234")

    with pytest.raises(RegistryAuthError, match=f"{SERVER} refused user u"):
        builder._pushed_digest(Client(), {}, f"{SERVER}/mlops/m", "1", builder.auth_config())
