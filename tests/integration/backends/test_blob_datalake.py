"""BlobDataLake against a real Azurite: the parts the contract tests cannot cover."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from backends.blob_datalake import BlobDataLake
from core.interfaces import BackendError, NotFoundError
from core.settings import AZURITE_ACCOUNT, AZURITE_KEY, Settings
from tests.utils.net import free_port

pytestmark = pytest.mark.integration


def test_a_dead_endpoint_fails_fast_and_names_it() -> None:
    port = free_port()
    lake = BlobDataLake(Settings(azurite_port=port).blob_connection)

    started = time.monotonic()
    with pytest.raises(BackendError) as err:
        lake.list("landing")

    assert time.monotonic() - started < 5
    message = str(err.value)
    assert f"http://127.0.0.1:{port}/devstoreaccount1" in message and "mlops up" in message
    assert AZURITE_KEY not in message
    assert not isinstance(err.value, NotFoundError)


def test_account_url_with_a_credential_reaches_the_same_storage(
    azurite: Any, datalake: BlobDataLake, lake_containers: Any
) -> None:
    # The Azure code path (account URL + credential object) against the emulator.
    by_url = BlobDataLake(
        account_url=azurite.endpoint,
        credential=AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    )
    ref = by_url.put(lake_containers.landing, "via-url.csv", b"1", metadata={"a": "b"})

    data, got = datalake.get(lake_containers.landing, "via-url.csv")

    assert data == b"1" and got.etag == ref.etag and got.metadata == {"a": "b"}
    assert by_url.uri(lake_containers.landing, "x") == datalake.uri(lake_containers.landing, "x")


def test_service_errors_are_backend_errors(datalake: BlobDataLake) -> None:
    with pytest.raises(BackendError, match="OutOfRangeInput|InvalidResourceName"):
        datalake.ensure_containers("x")  # container names need 3+ characters


def test_larger_blobs_round_trip(datalake: BlobDataLake, lake_containers: Any) -> None:
    payload = bytes(range(256)) * 40_000  # ~10 MB: several chunks on download
    datalake.put(lake_containers.curated, "big.parquet", payload)
    data, ref = datalake.get(lake_containers.curated, "big.parquet")
    assert data == payload and ref.size == len(payload)
