"""BlobDataLake without a service: construction and addresses (no I/O)."""

from __future__ import annotations

import pytest

from backends.blob_datalake import BlobDataLake
from core.settings import Settings


def test_needs_exactly_one_way_to_connect() -> None:
    with pytest.raises(ValueError):
        BlobDataLake()
    with pytest.raises(ValueError):
        BlobDataLake(Settings().blob_connection, account_url="https://a.blob.core.windows.net")


def test_azure_account_url_addresses() -> None:
    # Any object with get_token satisfies the SDK; nothing is sent while building URLs.
    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: object) -> None:
            raise AssertionError("no request expected")

    lake = BlobDataLake(account_url="https://acct.blob.core.windows.net", credential=NoCredential())

    uri = lake.uri("landing", "2026/11/new data.csv")
    assert uri == "https://acct.blob.core.windows.net/landing/2026/11/new%20data.csv"
    ref = lake.ref(uri + "?sv=2024&sig=secret")
    assert (ref.container, ref.name, ref.uri) == ("landing", "2026/11/new data.csv", uri)
    with pytest.raises(ValueError, match="not a blob of the data lake"):
        lake.ref("https://other.blob.core.windows.net/landing/x.csv")


def test_azurite_addresses_are_path_style() -> None:
    lake = BlobDataLake(Settings(azurite_port=10999).blob_connection)
    assert lake.endpoint == "http://127.0.0.1:10999/devstoreaccount1"
    assert lake.uri("curated", "a.csv") == "http://127.0.0.1:10999/devstoreaccount1/curated/a.csv"
    assert lake.ref("curated/sets/a.csv").uri == lake.uri("curated", "sets/a.csv")
    for bad in ("curated", "curated/", "/", ""):
        with pytest.raises(ValueError, match="names no blob"):
            lake.ref(bad)
