"""The SAS scoring replicas get: it writes blobs of the collected container and nothing else."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from backends.blob_datalake import BlobDataLake
from backends.collect_sas import container_sas_url
from tests.utils.azurite import AzuriteInstance

HEADERS = {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06"}


def test_the_sas_writes_but_cannot_read_list_or_delete(azurite: AzuriteInstance) -> None:
    lake = BlobDataLake(azurite.connection_string)
    lake.ensure_containers("collected", "curated")
    url = container_sas_url(azurite.connection_string, "collected", 1)
    container, _, sas = url.partition("?")
    assert parse_qs(urlsplit(url).query)["sp"] == ["cw"]

    put = httpx.put(f"{container}/scoring/t/a.jsonl?{sas}", content=b"{}\n", headers=HEADERS)
    assert put.status_code == 201
    assert lake.get("collected", "scoring/t/a.jsonl")[0] == b"{}\n"

    headers = {"x-ms-version": HEADERS["x-ms-version"]}
    assert httpx.get(f"{container}/scoring/t/a.jsonl?{sas}", headers=headers).status_code == 403
    listing = httpx.get(f"{container}?restype=container&comp=list&{sas}", headers=headers)
    assert listing.status_code == 403
    delete = httpx.delete(f"{container}/scoring/t/a.jsonl?{sas}", headers=headers)
    assert delete.status_code == 403
    other = container.rsplit("/", 1)[0] + "/curated"
    assert httpx.put(f"{other}/x?{sas}", content=b"x", headers=HEADERS).status_code == 403
