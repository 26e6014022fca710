"""The data lake on Azure Blob Storage: Azurite locally, a storage account in Azure.

One class for both: a connection string (Azurite's well-known account, or a real
account's key) or an account URL with an Azure AD credential. Only this module imports
``azure.storage.blob``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobProperties, BlobServiceClient, LinearRetry

from core.interfaces import BackendError, BlobRef, ConflictError, NotFoundError, TooLargeError

log = logging.getLogger(__name__)


class BlobDataLake:
    """``DataLake`` on Azure Blob Storage (or Azurite).

    Args:
        connection_string: A storage connection string (Azurite or an account key).
        account_url: ``https://<account>.blob.core.windows.net``, used with ``credential``.
        credential: Any credential the SDK accepts; with ``account_url`` and None,
            ``DefaultAzureCredential`` (environment, managed identity, Azure CLI).
        connect_timeout: Seconds to establish a connection; keeps a dead endpoint from
            hanging a flow.
        read_timeout: Seconds to wait for each read from the socket.
        retries: Retries of throttled or failed requests (connection failures retry once).
        chunk_bytes: Size of each ranged read of ``download`` (the first one too): what a
            download holds in memory at a time.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        retries: int = 3,
        chunk_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if (connection_string is None) == (account_url is None):
            raise ValueError("give exactly one of connection_string and account_url")
        # Seconds-long backoffs (the SDK default starts at 15 s) turn an unreachable
        # endpoint into a minute-long hang; a short linear backoff fails within seconds.
        options: dict[str, Any] = {
            "retry_policy": LinearRetry(
                backoff=1, random_jitter_range=1, retry_total=retries, retry_connect=1
            ),
            "connection_timeout": connect_timeout,
            "read_timeout": read_timeout,
            # The SDK's first read defaults to 32 MiB: one chunk size for every read.
            "max_single_get_size": chunk_bytes,
            "max_chunk_get_size": chunk_bytes,
        }
        if connection_string is not None:
            self._service = BlobServiceClient.from_connection_string(connection_string, **options)
        else:
            if credential is None:
                from azure.identity import DefaultAzureCredential  # heavy: only for Azure

                credential = DefaultAzureCredential()
            self._service = BlobServiceClient(str(account_url), credential=credential, **options)
        # The account URL without any SAS query: safe to show in errors and logs.
        self.endpoint = self._service.url.split("?", 1)[0].rstrip("/")

    # ------------------------------------------------------------------ containers
    def ensure_containers(self, *names: str) -> None:
        """Create the containers that do not exist yet."""
        for name in names:
            with self._errors(f"create container {name!r}"):
                try:
                    self._service.create_container(name)
                    log.info("created container %s", name)
                except ResourceExistsError:
                    pass

    # ------------------------------------------------------------------ blobs
    def put(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> BlobRef:
        """Write a blob, optionally only if unchanged (``if_match``) or absent."""
        conditions: dict[str, Any] = {"overwrite": not if_none_match}
        if if_match is not None:
            conditions.update(etag=if_match, match_condition=MatchConditions.IfNotModified)
        blob = self._service.get_blob_client(container, name)
        with self._errors(f"write {container}/{name}", conditional=bool(if_match)):
            result = blob.upload_blob(data, metadata=metadata or {}, **conditions)
        return BlobRef(
            container=container,
            name=name,
            uri=self.uri(container, name),
            etag=_quoted(str(result["etag"])),
            size=len(data),
            last_modified=result.get("last_modified"),
            metadata=dict(metadata or {}),
        )

    def get(self, container: str, name: str) -> tuple[bytes, BlobRef]:
        """Read a blob and the properties of the version read."""
        blob = self._service.get_blob_client(container, name)
        with self._errors(f"read {container}/{name}"):
            stream = blob.download_blob()
            data = stream.readall()
        return data, self._to_ref(container, stream.properties)

    def download(
        self,
        container: str,
        name: str,
        dest: Path,
        *,
        etag: str | None = None,
        max_bytes: int | None = None,
    ) -> BlobRef:
        """Stream a blob into ``dest`` chunk by chunk (``StorageStreamDownloader.chunks``).

        With ``max_bytes`` the blob's properties are read first and a larger blob is refused
        (``TooLargeError``) before a byte of it is; the download is then pinned to the etag
        seen, so the bytes read are those of the size checked.
        """
        blob = self._service.get_blob_client(container, name)
        where = f"{container}/{name}"
        with self._errors(f"read {where}", conditional=bool(etag)):
            if max_bytes is not None:
                props = blob.get_blob_properties(**_pinned(etag))
                if int(props.size or 0) > max_bytes:
                    raise TooLargeError(
                        f"{name}: {props.size} bytes, over the limit of {max_bytes}: not read"
                    )
                etag = etag or _quoted(str(props.etag))
            # The SDK reads the first range, then each further one conditioned on the etag of
            # the first: a blob replaced mid-download fails instead of mixing two versions.
            stream = blob.download_blob(max_concurrency=1, **_pinned(etag))
            written = 0
            with dest.open("wb") as file:
                for chunk in stream.chunks():
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise TooLargeError(f"{name}: over the limit of {max_bytes} bytes")
                    file.write(chunk)
        return self._to_ref(container, stream.properties)

    def upload(
        self,
        container: str,
        name: str,
        source: Path,
        *,
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
    ) -> BlobRef:
        """Write a local file as a blob; the SDK stages blocks (4 MiB) from the open file."""
        blob = self._service.get_blob_client(container, name)
        size = source.stat().st_size
        with self._errors(f"write {container}/{name}"), source.open("rb") as file:
            result = blob.upload_blob(
                file,
                length=size,
                overwrite=not if_none_match,
                metadata=metadata or {},
                max_concurrency=1,
            )
        return BlobRef(
            container=container,
            name=name,
            uri=self.uri(container, name),
            etag=_quoted(str(result["etag"])),
            size=size,
            last_modified=result.get("last_modified"),
            metadata=dict(metadata or {}),
        )

    def list(self, container: str, prefix: str = "") -> list[BlobRef]:
        """Blobs of ``container`` whose names start with ``prefix``, with their metadata."""
        client = self._service.get_container_client(container)
        with self._errors(f"list {container}/{prefix}*"):
            found = client.list_blobs(name_starts_with=prefix or None, include=["metadata"])
            return [self._to_ref(container, props) for props in found]

    def copy(
        self,
        src: BlobRef,
        container: str,
        name: str,
        metadata: dict[str, str] | None = None,
    ) -> BlobRef:
        """Copy ``src`` (a blob of this lake) to ``container/name``.

        If ``src.etag`` is set, only that version is copied (``ConflictError`` otherwise).
        ``metadata`` replaces the source's metadata; None keeps it.
        """
        source = self._service.get_blob_client(src.container, src.name)
        target = self._service.get_blob_client(container, name)
        options: dict[str, Any] = {}
        if metadata is not None:
            options["metadata"] = metadata
        if src.etag:
            options.update(
                source_etag=src.etag, source_match_condition=MatchConditions.IfNotModified
            )
        what = f"copy {src.container}/{src.name} to {container}/{name}"
        with self._errors(what, conditional=bool(src.etag)):
            # Within one account the service copies synchronously; the SDK still reports
            # "pending" for large blobs, so the result is checked on the properties.
            target.start_copy_from_url(source.url, **options)
            props = target.get_blob_properties()
        status = props.copy.status if props.copy else "success"
        if status != "success":
            raise BackendError(f"{what} at {self.endpoint}: copy status {status!r}")
        return self._to_ref(container, props)

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        """Delete a blob (and its snapshots), optionally only if unchanged since read."""
        options: dict[str, Any] = {"delete_snapshots": "include"}
        if if_match is not None:
            options.update(etag=if_match, match_condition=MatchConditions.IfNotModified)
        blob = self._service.get_blob_client(container, name)
        with self._errors(f"delete {container}/{name}", conditional=bool(if_match)):
            blob.delete_blob(**options)

    def exists(self, container: str, name: str) -> bool:
        """Whether the blob exists."""
        with self._errors(f"check {container}/{name}"):
            return bool(self._service.get_blob_client(container, name).exists())

    # ------------------------------------------------------------------ addresses
    def uri(self, container: str, name: str) -> str:
        """The blob's URL."""
        return f"{self.endpoint}/{quote(container)}/{quote(name, safe='/~')}"

    def ref(self, uri: str) -> BlobRef:
        """Parse a blob URL of this account, or ``container/name``, into a reference.

        Raises:
            ValueError: A URL of another account or endpoint, or no blob name.
        """
        if "://" in uri:
            base = self.endpoint + "/"
            if not uri.startswith(base):
                raise ValueError(f"{uri!r} is not a blob of the data lake at {self.endpoint}")
            path = urlsplit(uri).path[len(urlsplit(base).path) :]
        else:
            path = uri.lstrip("/")
        container, _, name = unquote(path).partition("/")
        if not container or not name:
            raise ValueError(f"{uri!r} names no blob (expected <container>/<name>)")
        return BlobRef(container=container, name=name, uri=self.uri(container, name))

    # ------------------------------------------------------------------ helpers
    def _to_ref(self, container: str, props: BlobProperties) -> BlobRef:
        return BlobRef(
            container=container,
            name=props.name,
            uri=self.uri(container, props.name),
            etag=_quoted(str(props.etag)),
            size=int(props.size or 0),
            last_modified=props.last_modified,
            metadata=dict(props.metadata or {}),
        )

    @contextmanager
    def _errors(self, what: str, *, conditional: bool = False) -> Iterator[None]:
        """Turn SDK exceptions into the backend's, naming the endpoint (never the key)."""
        try:
            yield
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise ConflictError(f"{what} at {self.endpoint}: {_reason(exc)}") from exc
        except ResourceNotFoundError as exc:
            # A conditional write on a blob deleted since it was read lost a race too.
            lost_race = conditional and _code(exc) != "ContainerNotFound"
            error = ConflictError if lost_race else NotFoundError
            raise error(f"{what} at {self.endpoint}: {_reason(exc)}") from exc
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise ConflictError(f"{what} at {self.endpoint}: {_reason(exc)}") from exc
            raise BackendError(f"{what} at {self.endpoint} failed: {_reason(exc)}") from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise BackendError(
                f"{what}: cannot reach blob storage at {self.endpoint} ({type(exc).__name__}); "
                "is it running (locally: `mlops up`) and is the endpoint right?"
            ) from exc
        except AzureError as exc:
            raise BackendError(f"{what} at {self.endpoint} failed: {exc}") from exc


def _code(exc: AzureError) -> str:
    """The storage error code ("BlobNotFound", ...), or ""."""
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")  # a StorageErrorCode enum or a str


def _reason(exc: AzureError) -> str:
    """The service's error code and the first line of its message."""
    code = _code(exc)
    first = (str(exc.message or "").splitlines() or [type(exc).__name__])[0]
    return f"{code}: {first}" if code else first


def _pinned(etag: str | None) -> dict[str, Any]:
    """The SDK's keywords for "only this version"."""
    if not etag:
        return {}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _quoted(etag: str) -> str:
    """Etags in one form: listings return them bare, reads and writes quoted."""
    return etag if etag.startswith('"') else f'"{etag}"'
