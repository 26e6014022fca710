"""The token side of the fake registry: the Bearer-token flow Azure Container Registry uses.

As ACR (``Azure/acr`` ``docs/AAD-OAuth.md``, and the distribution token specification):

1. A request without a valid access token gets ``401`` and
   ``WWW-Authenticate: Bearer realm="<registry>/oauth2/token",service="<host>"[,scope="..."]``.
2. The client asks the realm for an access token: ``GET /oauth2/token?service=&scope=`` with
   Basic credentials (what the Docker engine does with a username and password), or
   ``POST /oauth2/token`` with the form ``grant_type=password`` (``username``, ``password``) or
   ``grant_type=refresh_token`` (``refresh_token``), ``service`` and ``scope``. The answer is
   ``{"access_token": "..."}``.
3. Entra ID: ``POST /oauth2/exchange`` (``grant_type=access_token``, ``service``,
   ``access_token=<Entra ID token>``) answers ``{"refresh_token": "..."}``; that refresh token
   is the password of the null-GUID user, or a ``refresh_token`` grant.
4. Every registry request then carries ``Authorization: Bearer <access token>``; the token
   covers the scopes it was issued for (``repository:<name>:pull,push``).

Tokens here are random strings, not JWTs: the clients under test treat them as opaque.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

NULL_GUID = "00000000-0000-0000-0000-000000000000"
# What ACR answers a token request with bad credentials (the registry API's error shape).
_UNAUTHORIZED: dict[str, Any] = {
    "errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]
}


@dataclass
class Grant:
    user: str
    scopes: set[tuple[str, str]]  # (repository, action)


@dataclass
class TokenService:
    """Issues and checks access tokens for one registry.

    Args:
        host: The registry's ``host:port`` (the ``service``).
        username: The admin user.
        password: Its password.
        aad_tokens: Entra ID access tokens ``/oauth2/exchange`` accepts, and whose they are.
    """

    host: str
    username: str
    password: str
    aad_tokens: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def challenge(self, scope: str = "") -> str:
        realm = f'Bearer realm="http://{self.host}/oauth2/token",service="{self.host}"'
        return realm + (f',scope="{scope}"' if scope else "")

    def allowed(self, authorization: str, repository: str, action: str) -> str | None:
        """The user a Bearer token stands for if it covers ``action`` on ``repository``
        (``""`` for the version check, which any valid token passes)."""
        if not authorization.lower().startswith("bearer "):
            return None
        with self.lock:
            grant = self.access_tokens.get(authorization[7:].strip())
        if grant is None:
            return None
        if repository and (repository, action) not in grant.scopes:
            return None
        return grant.user

    # ------------------------------------------------------------------ endpoints
    def token(
        self, method: str, query: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, Any], str]:
        """``GET`` or ``POST /oauth2/token``: an access token (and whose), or 401."""
        params = {k: v[0] for k, v in parse_qs(query).items()}
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()} if method == "POST" else {}
        scopes = [*params.get("scope", "").split(), *form.get("scope", "").split()]
        user: str | None
        if method == "GET":
            user = self._basic(authorization)
        elif form.get("grant_type") == "password":
            user = self._user(form.get("username", ""), form.get("password", ""))
        elif form.get("grant_type") == "refresh_token":
            with self.lock:
                user = self.refresh_tokens.get(form.get("refresh_token", ""))
        else:
            return 400, {"errors": [{"code": "UNSUPPORTED", "message": "grant_type"}]}, ""
        if user is None or (params.get("service") or form.get("service")) != self.host:
            return 401, _UNAUTHORIZED, ""
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.access_tokens[token] = Grant(user, _parse_scopes(scopes))
        return 200, {"access_token": token}, user

    def exchange(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /oauth2/exchange``: an Entra ID token for a refresh token."""
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        user = self.aad_tokens.get(form.get("access_token", ""))
        if form.get("grant_type") != "access_token" or form.get("service") != self.host:
            return 400, {"error": "invalid request"}
        if user is None:
            return 401, _UNAUTHORIZED
        refresh = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[refresh] = user
        return 200, {"refresh_token": refresh}

    # ------------------------------------------------------------------ helpers
    def _basic(self, authorization: str) -> str | None:
        if not authorization.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return self._user(user, password)

    def _user(self, user: str, password: str) -> str | None:
        if self.username and (user, password) == (self.username, self.password):
            return user
        if user == NULL_GUID:
            with self.lock:
                return self.refresh_tokens.get(password)
        return None


def _parse_scopes(scopes: list[str]) -> set[tuple[str, str]]:
    """``repository:<name>:pull,push`` -> {(name, "pull"), (name, "push")}."""
    granted: set[tuple[str, str]] = set()
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind == "repository" and name:
            granted |= {(name, action) for action in actions.split(",") if action}
    return granted
