"""Write-only SAS URLs for the lake's ``collected`` container, handed to scoring replicas.

The scoring service holds no storage SDK and no account key: it ``PUT``s its window files
to a container SAS URL (``scoring.collect.SasUploader``). The SAS allows create and write
only (no read, list or delete) and expires after a bounded time; each release issues a new
one. With an account key (Azurite, or a connection string) it is a service SAS; with an
Entra ID credential a user-delegation SAS (Azure caps its key at 7 days).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# Clock skew between this machine and the storage service: a SAS valid from a little earlier.
_SKEW = timedelta(minutes=5)
USER_DELEGATION_MAX = timedelta(days=7)
PERMISSION = "cw"  # create and write blobs: no read, list or delete


@dataclass(frozen=True)
class Collection:
    """What a deployment target gives replicas so they collect: a SAS URL issuer and the
    sampling rate. ``env`` is the replica's ``SCORING_COLLECT_*`` configuration."""

    issue_url: Callable[[], str]
    sample: float = 1.0
    window_seconds: float | None = None  # None: the service's default window

    def env(self, environment: str, url_file: str | None) -> dict[str, str]:
        """The replica's settings; the URL itself travels as the file ``url_file`` (None:
        the caller delivers ``SCORING_COLLECT_URL`` its own way, e.g. Key Vault injection)."""
        env = {"SCORING_COLLECT_ENV": environment, "SCORING_COLLECT_SAMPLE": str(self.sample)}
        if self.window_seconds is not None:
            env["SCORING_COLLECT_WINDOW_SECONDS"] = str(self.window_seconds)
        if url_file is not None:
            env["SCORING_COLLECT_URL_FILE"] = url_file
        return env


def container_sas_url(connection_string: str, container: str, days: float) -> str:
    """A service SAS URL (create, write) of ``container``, signed with the account key."""
    from azure.storage.blob import BlobServiceClient, generate_container_sas

    service = BlobServiceClient.from_connection_string(connection_string)
    now = datetime.now(UTC)
    sas = generate_container_sas(
        str(service.account_name),
        container,
        account_key=service.credential.account_key,
        permission=PERMISSION,
        start=now - _SKEW,
        expiry=now + timedelta(days=days),
    )
    return f"{service.get_container_client(container).url}?{sas}"


def user_delegation_sas_url(
    account_url: str, credential: TokenCredential, container: str, days: float
) -> str:
    """A user-delegation SAS URL (create, write) of ``container``: signed by a key Azure
    issues to ``credential`` (which needs a role that grants
    ``generateUserDelegationKey``, e.g. Storage Blob Data Contributor); at most 7 days."""
    from azure.storage.blob import BlobServiceClient, generate_container_sas

    service = BlobServiceClient(account_url, credential=credential)
    now = datetime.now(UTC)
    expiry = now + min(timedelta(days=days), USER_DELEGATION_MAX - _SKEW)
    key = service.get_user_delegation_key(now - _SKEW, expiry)
    sas = generate_container_sas(
        str(service.account_name),
        container,
        user_delegation_key=key,
        permission=PERMISSION,
        start=now - _SKEW,
        expiry=expiry,
    )
    return f"{service.get_container_client(container).url}?{sas}"
