"""KeyVaultSecrets against a fake vault: the Key Vault REST calls the real SecretClient sends
(api-version, paths, the bearer challenge), answered in the documented shapes."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from backends.azure.keyvault import KeyVaultSecrets, injection
from core.interfaces import BackendError, NotFoundError
from tests.utils.azure_http import Recorded, RecordingTransport, Reply

VAULT = "https://kvmlopsapp.vault.azure.net"
API_VERSION = "2026-04-01"
CHALLENGE = {
    "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/'
    '00000000-0000-0000-0000-000000000001", resource="https://vault.azure.net"'
}


class FakeVault:
    """Secrets as Key Vault keeps them (versions included); it asks for a bearer token first."""

    def __init__(self, transport: RecordingTransport) -> None:
        self.versions: dict[str, list[str]] = {}
        transport.route("GET", r"/secrets/[^/?]+/?\?", self._get)
        transport.route("PUT", r"/secrets/[^/?]+\?", self._put)

    def bundle(self, name: str) -> dict[str, Any]:
        version = f"v{len(self.versions[name])}"
        return {
            "value": self.versions[name][-1],
            "id": f"{VAULT}/secrets/{name}/{version}",
            "contentType": "text/plain",
            "attributes": {"enabled": True, "created": 1764600000, "updated": 1764600000},
            "tags": {"managed-by": "mlops"},
        }

    def _challenge(self, request: Recorded) -> Reply | None:
        if "Authorization" not in request.headers:
            return Reply(401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, CHALLENGE)
        return None

    def _get(self, request: Recorded) -> Reply:
        name = re.search(r"/secrets/([^/?]+)", request.url)[1]  # type: ignore[index]
        if (challenge := self._challenge(request)) is not None:
            return challenge
        if name not in self.versions:
            message = f"A secret with (name/id) {name} was not found in this key vault."
            return Reply(404, {"error": {"code": "SecretNotFound", "message": message}})
        return Reply(200, self.bundle(name))

    def _put(self, request: Recorded) -> Reply:
        name = re.search(r"/secrets/([^/?]+)", request.url)[1]  # type: ignore[index]
        if (challenge := self._challenge(request)) is not None:
            return challenge
        self.versions.setdefault(name, []).append(request.json()["value"])
        return Reply(200, self.bundle(name))


@pytest.fixture
def vault(transport: RecordingTransport) -> FakeVault:
    return FakeVault(transport)


@pytest.fixture
def secrets(transport: RecordingTransport, credential: Any) -> KeyVaultSecrets:
    return KeyVaultSecrets.from_url(VAULT + "/", credential, transport=transport)


def test_get_reads_the_current_value(
    vault: FakeVault, secrets: KeyVaultSecrets, transport: RecordingTransport
) -> None:
    vault.versions["scoring-qa-api-key"] = ["old-k3y", "qa-k3y-0123456789abcdef"]

    assert secrets.get("scoring-qa-api-key") == "qa-k3y-0123456789abcdef"

    signed = [r for r in transport.requests if "Authorization" in r.headers]
    (get,) = signed
    assert get.method == "GET"
    assert get.url == f"{VAULT}/secrets/scoring-qa-api-key/?api-version={API_VERSION}"
    assert get.headers["Authorization"] == "Bearer fake-token"


def test_a_missing_secret_is_not_found(vault: FakeVault, secrets: KeyVaultSecrets) -> None:
    with pytest.raises(NotFoundError, match="no secret 'nope'"):
        secrets.get("nope")
    with pytest.raises(NotFoundError):
        secrets.reference("nope")


def test_get_or_create_creates_a_random_key_once(
    vault: FakeVault,
    secrets: KeyVaultSecrets,
    transport: RecordingTransport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    first = secrets.get_or_create("scoring-qa-api-key")
    again = secrets.get_or_create("scoring-qa-api-key")

    assert first == again and len(first) >= 40
    (put,) = [r for r in transport.sent("PUT", r"/secrets/") if "Authorization" in r.headers]
    assert put.url == f"{VAULT}/secrets/scoring-qa-api-key?api-version={API_VERSION}"
    body = put.json()
    assert body["value"] == first
    assert body["contentType"] == "text/plain" and body["tags"] == {"managed-by": "mlops"}
    assert vault.versions["scoring-qa-api-key"] == [first]
    assert first not in caplog.text


def test_put_writes_a_new_version_only_for_a_new_value(
    vault: FakeVault, secrets: KeyVaultSecrets, transport: RecordingTransport
) -> None:
    first = secrets.put("endpoint-key", "primary-k3y-0123456789")
    same = secrets.put("endpoint-key", "primary-k3y-0123456789")
    other = secrets.put("endpoint-key", "rotated-k3y-0123456789")

    assert first == same == f"{VAULT}/secrets/endpoint-key/v1"
    assert other == f"{VAULT}/secrets/endpoint-key/v2"
    assert secrets.reference("endpoint-key") == other
    assert injection(other) == "${{keyvault:" + other + "}}"


def test_a_refusal_is_a_backend_error_without_the_value(
    transport: RecordingTransport, secrets: KeyVaultSecrets
) -> None:
    denied = {"error": {"code": "Forbidden", "message": "Caller is not authorized"}}
    transport.route("GET", r"/secrets/", Reply(404, {"error": {"code": "SecretNotFound"}}))
    transport.route("PUT", r"/secrets/", Reply(403, denied, CHALLENGE))

    with pytest.raises(BackendError, match="Forbidden") as caught:
        secrets.put("endpoint-key", "primary-k3y-0123456789")
    assert "primary-k3y" not in str(caught.value)


def test_the_url_must_be_https(credential: Any) -> None:
    with pytest.raises(ValueError, match="https://"):
        KeyVaultSecrets.from_url("kvmlopsapp.vault.azure.net", credential)
