"""``PUT`` of a window file to the ``collected`` container through a SAS URL.

Plain HTTP(S) with the standard library: the scoring image has no storage SDK, and the same
request (Put Blob of a block blob) works against Azurite and Azure Blob Storage.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

# The Blob REST API version of the upload (Azurite and Azure Storage both accept it).
BLOB_API_VERSION = "2021-08-06"


class SasUploader:
    """``PUT`` of a block blob to a container SAS URL (``https://<account>/<container>?<sas>``).

    The URL is a secret: ``url`` returns it at each upload (``Path.read_text`` of the
    file the deployment wrote, so a renewed SAS is used at once) and it is never logged.
    Plain HTTP(S), no storage SDK: the same request works against Azurite and Azure Blob.
    """

    def __init__(self, url: Callable[[], str], timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout

    def __call__(self, name: str, body: bytes) -> None:
        container, _, sas = self.url().strip().partition("?")
        request = Request(
            f"{container.rstrip('/')}/{quote(name)}?{sas}",
            data=body,
            method="PUT",
            headers={
                "x-ms-blob-type": "BlockBlob",
                "x-ms-version": BLOB_API_VERSION,
                "Content-Type": "application/x-ndjson",
            },
        )
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (https/http)
                response.read()
        except HTTPError as exc:  # the message names the status, never the URL (the SAS)
            raise OSError(f"upload of {name} answered {exc.code} {exc.reason}") from None
        except URLError as exc:
            raise OSError(f"upload of {name} failed: {exc.reason}") from None
