"""The whole loop, as it runs by itself: a real Prefect server, worker and deployments, real
Azurite, and Docker when an engine can run (processes otherwise).

upload a blob -> the watcher announces it -> retraining runs -> a version is registered ->
release runs -> production serves it; then a bad file -> quarantine + notification; then a
burst of files -> at most two retraining runs and every file accounted for.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient
from prefect.client.orchestration import SyncPrefectClient

from mlops.demo_wait import runs, settled, wait
from mlops.notify import read_notifications
from tests.utils.stack import MLOPS, LocalStack, running_stack
from training.data import reference_dataset

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    try:
        docker_host: str | None = request.getfixturevalue("docker_host")
    except pytest.skip.Exception:  # no engine can run here: the process target
        docker_host = None
    stack = LocalStack(
        tmp_path_factory.mktemp("e2e"),
        release_target="docker" if docker_host else "process",
        docker_host=docker_host,
    )
    with running_stack(stack):
        deployed = stack.mlops("deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        yield stack


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[SyncPrefectClient]:
    """A client of the stack's Prefect server, for the demo's wait helpers."""
    with SyncPrefectClient(stack.settings.prefect_api_url) as client:
        yield client


def upload(stack: LocalStack, name: str, data: bytes) -> None:
    """What a data producer does: the Azure SDK, straight to the landing container."""
    service = BlobServiceClient.from_connection_string(stack.settings.blob_connection)
    service.get_blob_client(stack.settings.landing_container, name).upload_blob(
        data, overwrite=True
    )


def run_watcher(stack: LocalStack) -> None:
    """Run the watcher deployment now instead of waiting for its 60 s schedule."""
    prefect = MLOPS.with_name("prefect")
    result = subprocess.run(
        [str(prefect), "deployment", "run", "blob-watcher/blob-watcher"],
        env={**stack.env, "PREFECT_API_URL": stack.settings.prefect_api_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def served_version(stack: LocalStack) -> str | None:
    url, key = stack.mlops("url", "production"), stack.mlops("key", "production")
    if url.returncode != 0:
        return None
    response = httpx.post(
        f"{url.stdout.strip()}/score",
        json={"data": [[0.01] * 10]},
        headers={"Authorization": f"Bearer {key.stdout.strip()}"},
        timeout=10,
    )
    return str(response.json()["model"]["version"]) if response.status_code == 200 else None


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def test_new_data_reaches_production_then_bad_data_is_quarantined_then_a_burst(
    stack: LocalStack, client: SyncPrefectClient
) -> None:
    settings = stack.settings
    lake = BlobServiceClient.from_connection_string(settings.blob_connection)

    # 1. New data arrives: watcher -> retraining -> registered -> release -> serving.
    upload(stack, "batch-a.csv", (DATA / "good" / "diabetes_batch_a.csv").read_bytes())
    run_watcher(stack)
    retrain = wait(
        "a completed retraining run",
        lambda: [r for r in runs(client, "retraining", 0) if r.state and r.state.is_completed()],
        timeout=600,  # it releases what it registers before it completes
    )
    assert retrain[0].parameters["drain_landing"] is True
    version = wait("a version in production", lambda: served_version(stack), timeout=420)
    assert version == "1"
    # Production serves the new version before the release run ends: it still smoke tests
    # production, moves the alias and tears QA down. Wait for the run, then judge it.
    releases = wait("the release run to finish", lambda: settled(runs(client, "release", 0)), 180)
    assert all(r.state.is_completed() for r in releases), releases
    status = stack.mlops("status").stdout
    assert "candidate, production" in status or "production, candidate" in status

    # 2. A bad file: quarantined with its reason, a notification recorded, nothing released.
    time.sleep(max(0.0, 65 - (time.time() - retrain[-1].created.timestamp())))
    upload(stack, "bad.csv", (DATA / "bad" / "out_of_range.csv").read_bytes())
    run_watcher(stack)
    wait(
        "the bad file in quarantine",
        lambda: [
            b.name
            for b in lake.get_container_client(settings.quarantine_container).list_blobs()
            if b.name.endswith("bad.csv.reason.json")
        ],
        timeout=240,
    )
    notes = wait(
        "a quarantine notification",
        lambda: [
            n
            for n in read_notifications(settings.notifications_path)
            if n["body"] and n["body"].get("event") == "mlops.data.quarantined"
        ],
        timeout=60,
    )
    assert "bad.csv" in json.dumps(notes[0]["body"])

    # 3. A burst of 20 files in a few seconds: at most two runs, every file accounted for.
    wait("retraining runs to settle", lambda: settled(runs(client, "retraining", 0)), 240)
    time.sleep(65)  # outside the trigger's window, as a real burst would usually be
    burst_start = time.time()
    reference = reference_dataset()
    names = [f"burst-{i:02d}.csv" for i in range(20)]
    for i, name in enumerate(names):
        upload(stack, name, csv_bytes(reference.sample(60, random_state=i)))
    run_watcher(stack)
    wait(
        "landing to empty",
        lambda: not list(lake.get_container_client(settings.landing_container).list_blobs()),
        timeout=300,
    )
    burst = wait(
        "the burst's retraining to finish",
        lambda: settled(runs(client, "retraining", burst_start)),
        timeout=300,
    )
    assert 1 <= len(burst) <= 2
    # Every file is either archived as accepted/<stamp>-<sha8>-<name> or quarantined as
    # <stamp>-<tag>-<name>: none forgotten in landing, none lost.
    kept = [
        b.name
        for container in (settings.curated_container, settings.quarantine_container)
        for b in lake.get_container_client(container).list_blobs()
    ]
    missing = [n for n in names if not any(k.endswith(f"-{n}") for k in kept)]
    assert missing == []
