"""The fake registry's authentication is ACR's Bearer-token flow (the push itself, through a
real engine: tests/integration/docker/test_acr_push.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.utils.oci_auth import NULL_GUID
from tests.utils.oci_registry import FakeRegistry

USER, PASSWORD, AAD = "acr-admin", "pa55-word-0123456789", "eyJ-aad-token-0123"


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry(USER, PASSWORD, aad_tokens={AAD: "ci@tenant"}) as fake:
        yield fake


def challenge(response: httpx.Response) -> dict[str, str]:
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def test_an_anonymous_request_is_challenged_to_fetch_a_bearer_token(
    registry: FakeRegistry,
) -> None:
    base = f"http://{registry.host}"
    assert challenge(httpx.get(f"{base}/v2/")) == {
        "realm": f"{base}/oauth2/token",
        "service": registry.host,
    }
    manifest = httpx.get(f"{base}/v2/mlops/model/manifests/1")
    assert manifest.status_code == 401
    assert challenge(manifest)["scope"] == "repository:mlops/model:pull"
    # Basic credentials are for the token endpoint only, as on ACR.
    assert httpx.get(f"{base}/v2/", auth=(USER, PASSWORD)).status_code == 401


def test_a_token_covers_only_the_scopes_it_was_issued_for(registry: FakeRegistry) -> None:
    base = f"http://{registry.host}"
    query = {"service": registry.host, "scope": "repository:mlops/model:pull"}
    assert httpx.get(f"{base}/oauth2/token", params=query, auth=(USER, "wrong")).status_code == 401
    issued = httpx.get(f"{base}/oauth2/token", params=query, auth=(USER, PASSWORD))
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}

    assert httpx.get(f"{base}/v2/", headers=bearer).status_code == 200
    assert httpx.get(f"{base}/v2/mlops/model/tags/list", headers=bearer).status_code == 200
    upload = httpx.post(f"{base}/v2/mlops/model/blobs/uploads/", headers=bearer)
    assert upload.status_code == 401  # pull only
    assert challenge(upload)["scope"] == "repository:mlops/model:pull,push"
    other = httpx.get(f"{base}/v2/other/tags/list", headers=bearer)
    assert other.status_code == 401
    assert {r.user for r in registry.state.requests if r.status == 200} == {USER}  # token too


def test_an_entra_id_token_becomes_a_refresh_token_then_access_tokens(
    registry: FakeRegistry,
) -> None:
    base = f"http://{registry.host}"
    form = {"grant_type": "access_token", "service": registry.host, "access_token": AAD}
    refresh = httpx.post(f"{base}/oauth2/exchange", data=form).json()["refresh_token"]
    refused = httpx.post(f"{base}/oauth2/exchange", data=form | {"access_token": "forged"})
    assert refused.status_code == 401

    scope = "repository:mlops/model:pull,push"
    # The refresh token works as the null GUID's password (docker login) ...
    query = {"service": registry.host, "scope": scope}
    basic = httpx.get(f"{base}/oauth2/token", params=query, auth=(NULL_GUID, refresh))
    # ... and as a refresh_token grant.
    grant = {"grant_type": "refresh_token", "refresh_token": refresh} | query
    posted = httpx.post(f"{base}/oauth2/token", data=grant)
    for issued in (basic, posted):
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        upload = httpx.post(f"{base}/v2/mlops/model/blobs/uploads/", headers=bearer)
        assert upload.status_code == 202
    accepted = [r for r in registry.state.requests if r.status in (200, 202)]
    assert {r.user for r in accepted if r.path != "/oauth2/exchange"} == {"ci@tenant"}
