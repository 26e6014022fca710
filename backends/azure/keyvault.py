"""Secrets in Azure Key Vault: where the Azure profile keeps every key its services check.

Settings name a vault (``MLOPS_AZURE__KEY_VAULT_URL``) and secret names, never values; this
adapter resolves them with the project's credential. Values leave it only as return values:
nothing here logs them or puts them in an exception message.

``reference`` gives the versioned secret id that Azure ML's secret injection resolves in a
deployment (``${{keyvault:<id>}}``): deployments carry that reference, not the key.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from core.interfaces import BackendError, NotFoundError

log = logging.getLogger(__name__)

# Azure Key Vault secret names: 1-127 letters, digits and hyphens.
_TAGS = {"managed-by": "mlops"}


class KeyVaultSecrets:
    """Read, create and reference the project's secrets in one Key Vault.

    Args:
        client: A ``SecretClient`` for the vault (see ``from_url``).
    """

    def __init__(self, client: SecretClient) -> None:
        self._client = client

    @classmethod
    def from_url(cls, vault_url: str, credential: Any, **kwargs: Any) -> KeyVaultSecrets:
        """A client for ``vault_url`` (``https://<vault>.vault.azure.net/``); contacts nothing."""
        if not vault_url.startswith("https://"):
            raise ValueError(f"a Key Vault URL starts with https://, not {vault_url!r}")
        return cls(SecretClient(vault_url, credential, **kwargs))

    @property
    def vault_url(self) -> str:
        return str(self._client.vault_url)

    def get(self, name: str) -> str:
        """The current value of secret ``name`` (``NotFoundError`` if there is none)."""
        try:
            value = self._client.get_secret(name).value
        except ResourceNotFoundError as exc:
            raise NotFoundError(f"Key Vault {self.vault_url} has no secret {name!r}") from exc
        except AzureError as exc:
            raise BackendError(f"cannot read secret {name!r}: {_reason(exc)}") from exc
        if not value:
            raise BackendError(f"secret {name!r} in {self.vault_url} is empty")
        return value

    def get_or_create(self, name: str, nbytes: int = 32) -> str:
        """The value of ``name``; a new random key (``nbytes`` of entropy) if it is missing."""
        try:
            return self.get(name)
        except NotFoundError:
            log.info("creating secret %s in %s", name, self.vault_url)
            self.put(name, secrets.token_urlsafe(nbytes))
            return self.get(name)

    def put(self, name: str, value: str) -> str:
        """Store ``value`` as secret ``name`` unless it already is; returns the versioned id."""
        try:
            current = self._client.get_secret(name)
        except ResourceNotFoundError:
            current = None
        except AzureError as exc:
            raise BackendError(f"cannot read secret {name!r}: {_reason(exc)}") from exc
        if current is not None and current.value == value and current.id:
            return str(current.id)  # no new version for the same value
        try:
            stored = self._client.set_secret(name, value, content_type="text/plain", tags=_TAGS)
        except AzureError as exc:
            raise BackendError(f"cannot write secret {name!r}: {_reason(exc)}") from exc
        return str(stored.id)

    def reference(self, name: str) -> str:
        """The versioned id of the current value: ``https://<vault>/secrets/<name>/<version>``."""
        try:
            secret = self._client.get_secret(name)
        except ResourceNotFoundError as exc:
            raise NotFoundError(f"Key Vault {self.vault_url} has no secret {name!r}") from exc
        except AzureError as exc:
            raise BackendError(f"cannot read secret {name!r}: {_reason(exc)}") from exc
        return str(secret.id)


def injection(secret_id: str) -> str:
    """The value of a deployment variable that Azure ML fills from Key Vault at start."""
    return "${{keyvault:" + secret_id + "}}"


def _reason(exc: AzureError) -> str:
    # The service's error code and message; a request body (a secret value) is never part of it.
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or type(exc).__name__
    return f"{code}: {getattr(error, 'message', None) or exc.message}"
