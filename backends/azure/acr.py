"""``ImageBuilder`` for the Azure profile: build the scoring image locally, push it to ACR.

The image is built exactly as on the local profile, by ``DockerImageBuilder`` (offline,
from a host wheelhouse pinned to the model's ``run.json``, reused when its labels match).
This module only adds the registry half: tag the local image
``<login_server>/<repository>:<tag>`` and push it with the Docker SDK. There is no ACR
build task and no ``az`` CLI: what runs in Azure is byte for byte what was built and
checked here.

Authentication (``docker login`` without the CLI), as documented for ACR's AAD
integration (``Azure/acr`` ``docs/AAD-OAuth.md``):

1. Get an Entra ID (AAD) access token from a ``TokenCredential`` for the ARM audience
   (``https://management.azure.com/.default``; the azure-containerregistry SDK asks for the
   same audience as ``https://management.core.windows.net/.default``). Registries that
   refuse ARM-audience tokens take ``https://containerregistry.azure.net/.default``
   instead: see ``aad_scope``.
2. ``POST https://<login_server>/oauth2/exchange`` with the form body
   ``grant_type=access_token&service=<login_server>[&tenant=<tenant>]&access_token=<token>``;
   the answer is ``{"refresh_token": "..."}``. The call goes through an azure-core
   ``PipelineClient``, so tests drive it with a transport.
3. Hand the engine username ``00000000-0000-0000-0000-000000000000`` (the null GUID tells
   ACR the password is an ACR refresh token) and the refresh token as password, per
   request (``auth_config``): nothing is written to ``~/.docker/config.json``.

An admin user or a repository-scoped token (plain username and password) works too.

Secrets (the AAD token, the refresh token, a password) are never logged, and every
message built from text a server or the engine sent is scrubbed of them. The exchange's
pipeline has no logging policies, since its request body carries the AAD token.

Before pushing, the engine looks the tag up in the registry (one manifest request, with
the credentials). The push is skipped when the tag resolves to a digest the local image
already carries for this repository (the engine records it on every push); otherwise it
always pushes: layers the registry has are not uploaded again. The lookup doubles as a
credentials check: a refusal (401/403) fails at once, where the engine would retry each
layer upload for about a minute before giving up (seen with dockerd 20.10).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import requests
from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.policies import RetryPolicy, UserAgentPolicy
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest
from docker.errors import APIError, DockerException

from backends.local.docker_image import DockerImageBuilder, ImageBuildError

logger = logging.getLogger(__name__)

ARM_SCOPE = "https://management.azure.com/.default"
NULL_GUID = "00000000-0000-0000-0000-000000000000"  # username for an ACR refresh token
_DIGEST = re.compile(r"\bsha256:[0-9a-f]{64}\b")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_SHOWN = 300  # characters of a server's error body kept in a message


class ImagePushError(ImageBuildError):
    """The scoring image was built but cannot be pushed; the message names the registry
    and the image, never a secret."""


class RegistryAuthError(ImagePushError):
    """No registry credentials could be obtained (Entra ID token, ACR token exchange), or
    the registry refused them."""


def _refused(exc: APIError) -> bool:
    """Whether the engine's error is the registry refusing the credentials. Behind a Bearer
    challenge (ACR) the refusal comes from the token endpoint, and the engine may report it
    as a 500 whose message carries the registry's UNAUTHORIZED / DENIED error."""
    text = str(exc.explanation or exc).lower()
    return any(word in text for word in ("unauthorized", "authentication required", "denied"))


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def acr_refresh_token(
    login_server: str,
    credential: TokenCredential,
    *,
    tenant: str = "",
    aad_scope: str = ARM_SCOPE,
    scheme: str = "https",
    transport: HttpTransport | None = None,
) -> str:
    """Exchange an Entra ID access token for an ACR refresh token (``/oauth2/exchange``).

    Args:
        login_server: The registry, e.g. ``myacr.azurecr.io`` (also the ``service``).
        credential: Supplies the Entra ID access token for ``aad_scope``.
        tenant: The Entra ID tenant of the token; sent only when given (optional).
        aad_scope: Audience of the Entra ID token.
        scheme: ``https``; ``http`` only for a local fake registry.
        transport: azure-core transport (tests); the default ``RequestsTransport`` else.

    Returns:
        The ACR refresh token: the docker password for username ``NULL_GUID``.

    Raises:
        RegistryAuthError: No Entra ID token, the registry cannot be reached, refused the
            exchange, or answered without a refresh token. Messages never hold a token.
    """
    try:
        aad_token = credential.get_token(aad_scope).token
    except AzureError as exc:  # ClientAuthenticationError and friends: no token in them
        raise RegistryAuthError(
            f"cannot get an Entra ID token ({aad_scope}) for ACR {login_server}: {exc}"
        ) from None
    form = {"grant_type": "access_token", "service": login_server}
    if tenant:
        form["tenant"] = tenant
    form["access_token"] = aad_token
    url = f"{scheme}://{login_server}/oauth2/exchange"
    request = HttpRequest(
        "POST",
        url,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        content=urlencode(form),  # encoded here: the exact body is under our control
    )
    # No logging policies: the request body carries the Entra ID token.
    client: PipelineClient[HttpRequest, Any] = PipelineClient(
        f"{scheme}://{login_server}",
        transport=transport,
        policies=[UserAgentPolicy(base_user_agent="prefect-mlops-acr"), RetryPolicy()],
    )
    with client:
        try:
            response = client.send_request(request)
            response.read()
        except AzureError as exc:
            reason = _redact(str(exc), [aad_token])
            raise RegistryAuthError(
                f"cannot reach ACR {login_server} to exchange tokens: {reason}"
            ) from None
    if response.status_code != 200:
        detail = _redact(response.text()[:_SHOWN], [aad_token]).strip()
        raise RegistryAuthError(
            f"ACR {login_server} refused the Entra ID token exchange "
            f"(HTTP {response.status_code}): {detail or response.reason}"
        )
    try:
        refresh = response.json().get("refresh_token")
    except (ValueError, AttributeError):
        refresh = None
    if not isinstance(refresh, str) or not refresh:
        raise RegistryAuthError(
            f"ACR {login_server} answered the token exchange without a refresh_token"
        )
    return refresh


def read_push_stream(items: Iterable[Mapping[str, Any]], reference: str) -> str | None:
    """Consume the engine's push progress; returns the pushed manifest digest, if told.

    The push endpoint answers 200 and reports failures inside the stream as
    ``{"error": ..., "errorDetail": {"message": ...}}`` items, so a stream that ends
    normally can still be a failed push: any error item makes it one.

    Args:
        items: Decoded stream items (``images.push(..., stream=True, decode=True)``).
        reference: The pushed ``repository:tag``, for messages.

    Returns:
        ``sha256:...`` from the final ``aux`` item (or the ``digest:`` status line of
        engines that send no ``aux``), or None when the engine reported neither.

    Raises:
        ImagePushError: The stream reported an error (the first one is quoted).
    """
    digest: str | None = None
    errors: list[str] = []
    for item in items:
        if "error" in item or "errorDetail" in item:
            detail = item.get("errorDetail")
            message = detail.get("message") if isinstance(detail, Mapping) else None
            errors.append(str(message or item.get("error") or "unknown error"))
            continue
        aux = item.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
            digest = aux["Digest"]
        status = str(item.get("status") or "")
        if digest is None and "digest:" in status and (found := _DIGEST.search(status)):
            digest = found.group(0)
        if item.get("id") is None and status:
            logger.debug("push %s: %s", reference, status)
    if errors:
        raise ImagePushError(f"push of {reference} failed: {errors[0]}")
    return digest


class AcrImageBuilder:
    """Builds the scoring image with ``DockerImageBuilder`` and pushes it to a registry
    (``ImageBuilder``).

    ``build`` returns the digest reference ``<login_server>/<repository>@sha256:...``
    when the engine reports the pushed digest (it does on every current engine), else the
    tag reference ``<login_server>/<repository>:<tag>``. The digest is preferred because
    it is immutable: a release records exactly the bytes that were checked, and a rollback
    brings them back even if the tag was pushed again since (``-dirty`` tags of an
    uncommitted tree are rebuilt under the same name). ACI and AKS pull digest references.

    Give either ``credential`` (Entra ID; exchanged for an ACR refresh token on each
    ``build``) or ``username`` and ``password`` (admin user or a registry token).

    Args:
        builder: The local builder that makes (or reuses) the image.
        login_server: The registry host, e.g. ``myacr.azurecr.io`` (``host:port`` allowed).
        credential: Entra ID credential with push rights (``AcrPush``) on the registry.
        username: Registry user, with ``password``, instead of ``credential``.
        password: Registry password or token; never logged.
        tenant: Entra ID tenant sent with the token exchange (optional).
        repository: Repository for every image; default: the local one (``mlops/<model>``).
            The tag (``<version>-<sha8>-<commit12>``) does not name the model: a shared
            repository suits one model only.
        aad_scope: Audience of the Entra ID token (``ARM_SCOPE`` unless the registry
            accepts only ACR-audience tokens).
        scheme: Scheme of the token exchange endpoint (``http`` only for a local fake);
            the engine chooses its own for the push.
        transport: azure-core transport for the token exchange (tests).
        client_factory: Makes the Docker client; default ``DockerClient(base_url=
            builder.docker_host)`` with a long timeout (pushes stream slowly).
    """

    def __init__(
        self,
        builder: DockerImageBuilder,
        login_server: str,
        *,
        credential: TokenCredential | None = None,
        username: str = "",
        password: str = "",
        tenant: str = "",
        repository: str = "",
        aad_scope: str = ARM_SCOPE,
        scheme: str = "https",
        transport: HttpTransport | None = None,
        client_factory: Callable[[], docker.DockerClient] | None = None,
    ) -> None:
        login_server = login_server.strip().rstrip("/")
        if not login_server or "/" in login_server or "://" in login_server:
            raise ValueError(
                f"login_server must be a host name, e.g. x.azurecr.io: {login_server!r}"
            )
        if (credential is None) == (not (username and password)):
            raise ValueError("give either credential or both username and password")
        if repository and not _REPOSITORY.match(repository):
            raise ValueError(f"not a valid repository name: {repository!r}")
        self.builder = builder
        self.login_server = login_server
        self.repository = repository
        self.tenant = tenant
        self.aad_scope = aad_scope
        self.scheme = scheme
        self._credential = credential
        self._login = (username, password)
        self._transport = transport
        self._factory = client_factory or (
            lambda: docker.DockerClient(base_url=builder.docker_host, timeout=900)
        )

    def __repr__(self) -> str:  # no secrets
        mode = "entra-id" if self._credential is not None else f"user {self._login[0]}"
        return f"AcrImageBuilder({self.login_server!r}, {mode})"

    def remote_reference(self, local: str) -> tuple[str, str]:
        """``(<login_server>/<repository>, tag)`` for a local ``repository:tag``."""
        local_repository, _, tag = local.rpartition(":")
        if not local_repository or "/" in tag:
            raise ImagePushError(f"the local image reference {local!r} has no tag")
        return f"{self.login_server}/{self.repository or local_repository}", tag

    def auth_config(self) -> dict[str, str]:
        """The per-request Docker credentials (exchanges an Entra ID token if needed)."""
        if self._credential is None:
            username, password = self._login
        else:
            username = NULL_GUID
            password = acr_refresh_token(
                self.login_server,
                self._credential,
                tenant=self.tenant,
                aad_scope=self.aad_scope,
                scheme=self.scheme,
                transport=self._transport,
            )
        return {"username": username, "password": password, "serveraddress": self.login_server}

    def build(
        self, model_name: str, model_version: str, artifact_dir: Path, code_version: str
    ) -> str:
        """Build (or reuse) the scoring image, push it, and return the pushed reference.

        Returns:
            ``<login_server>/<repository>@sha256:...`` (or ``...:<tag>`` if the engine did
            not report a digest).

        Raises:
            ImageBuildError: The local build failed (see ``DockerImageBuilder.build``).
            RegistryAuthError: No registry credentials could be obtained, or the registry
                refused them (checked before pushing).
            ImagePushError: Tagging or pushing failed; names registry and image.
        """
        local = self.builder.build(model_name, model_version, artifact_dir, code_version)
        remote, tag = self.remote_reference(local)
        reference = f"{remote}:{tag}"
        auth = self.auth_config()
        hidden = [auth["password"]]
        client = self._factory()
        try:
            try:
                image = client.images.get(local)
                image.tag(remote, tag)
            except DockerException as exc:
                reason = _redact(str(exc), hidden)
                raise ImagePushError(f"cannot tag {local} as {reference}: {reason}") from None
            pushed = self._pushed_digest(client, image.attrs, remote, tag, auth)
            if pushed is not None:
                logger.info(
                    "%s already holds %s (%s): not pushing", self.login_server, reference, pushed
                )
                return f"{remote}@{pushed}"
            logger.info("pushing %s to %s", reference, self.login_server)
            try:
                stream = client.images.push(
                    remote, tag=tag, stream=True, decode=True, auth_config=auth
                )
                digest = read_push_stream(stream, reference)
            except ImagePushError as exc:
                raise ImagePushError(
                    _redact(f"cannot push to {self.login_server}: {exc}", hidden)
                ) from None
            except (DockerException, requests.RequestException, OSError) as exc:
                reason = _redact(str(exc), hidden)
                raise ImagePushError(
                    f"cannot push {reference} to {self.login_server}: {reason}"
                ) from None
        finally:
            client.close()
        if digest is None:
            logger.warning("the engine reported no digest for %s: returning the tag", reference)
            return reference
        logger.info("pushed %s (%s)", reference, digest)
        return f"{remote}@{digest}"

    # ---------------------------------------------------------------- helpers
    def _pushed_digest(
        self,
        client: docker.DockerClient,
        attrs: Mapping[str, Any],
        remote: str,
        tag: str,
        auth: dict[str, str],
    ) -> str | None:
        """The digest of this image in the registry under ``tag``, if it is there already.

        The engine records a repository digest on the image when it pushes (or pulls) it;
        if the registry's ``tag`` resolves to one of those, the push has nothing to do. Any
        other doubt (no such tag, lookup failed) means push.

        The lookup also checks the credentials: a registry that refuses them fails the
        build here, at once, where the push would retry each layer for about a minute.

        Raises:
            RegistryAuthError: The registry refused the credentials (HTTP 401 or 403).
        """
        reference = f"{remote}:{tag}"
        try:
            current = client.images.get_registry_data(reference, auth_config=auth).id
        except APIError as exc:
            if exc.status_code in (401, 403) or _refused(exc):
                who = (
                    "the Entra ID refresh token"
                    if auth["username"] == NULL_GUID
                    else f"user {auth['username']}"
                )
                reason = _redact(str(exc.explanation or exc), [auth["password"]])
                raise RegistryAuthError(
                    f"{self.login_server} refused {who} for {reference}: {reason}"
                ) from None
            logger.debug("no %s in the registry yet (HTTP %s): pushing", reference, exc.status_code)
            return None
        except (DockerException, requests.RequestException, OSError) as exc:
            logger.debug("cannot look %s up (%s): pushing", reference, type(exc).__name__)
            return None
        known = {
            digest
            for name, _, digest in (str(d).partition("@") for d in attrs.get("RepoDigests") or [])
            if name == remote and digest
        }
        if current not in known:
            if known:
                logger.info("%s points at another image (%s): pushing", reference, current)
            return None
        return str(current)
