"""`mlops deploy`'s publishing (core.deploy.publish, the real `prefect deploy`) against a real
Prefect API, once per MLOPS_WORK_POOL choice: the same four deployments land in the chosen pool;
the ACI choice pushes the code to (Azurite) Blob Storage through the `mlops-code` block at
publish time, and the pull steps it stores bring that code back when Prefect runs them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import ContainerClient
from prefect.client.orchestration import get_client
from prefect.deployments.steps.core import run_steps
from prefect.settings import PREFECT_API_URL, temporary_settings

from backends.azure.code_storage import save_code_storage
from core.deploy import publish
from core.settings import AzureSettings, Settings, get_settings, load_settings
from core.version import REPO_ROOT
from tests.utils.prefect_api import ApiOnlyServer
from tests.utils.relay import declared_deployments

pytestmark = pytest.mark.integration

BLOCK = "{{ prefect.blocks.azure-blob-storage-credentials.mlops-code }}"
NAMES = declared_deployments()  # all of them, to either pool
SUB = "00000000-0000-0000-0000-000000000001"
WORKER = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-worker"
)


@pytest.fixture(scope="module")
def api(cache_dir: Path) -> Iterator[str]:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    server = ApiOnlyServer(cache_dir)
    try:
        url = server.url()
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
            # A flow run here (the build-validation test) leaves logs and events queued for
            # this server: deliver them while it answers, or the workers retry a closed port
            # when the session ends (as the session's flows_api fixture does).
            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)
    finally:
        server.stop()


def settings_for(pool: str, api: str, azurite: Any, tmp_path: Path) -> Settings:
    where = urlsplit(api)
    return load_settings(
        work_pool=pool,
        prefect_host=where.hostname,
        prefect_port=where.port,
        azurite_host=azurite.host,
        azurite_port=azurite.port,
        code_container=f"flow-code-{secrets.token_hex(4)}",
        state_dir=tmp_path / "state",
        azure=AzureSettings(
            subscription_id=SUB,
            resource_group="rg",
            registry="crmlops.azurecr.io",
            key_vault_url="https://kvmlops.vault.azure.net/",
            worker_identity=WORKER,
            worker_client_id="11111111-2222-3333-4444-555555555555",
            flow_image="crmlops.azurecr.io/mlops-flows@sha256:" + "ab" * 32,
            flow_subnet_id=f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
            "Microsoft.Network/virtualNetworks/vnet-mlops/subnets/flows",
        ),
    )


async def published(pool: str) -> tuple[Any, list[Any]]:
    async with get_client() as client:
        work_pool = await client.read_work_pool(pool)
        deployments = await client.read_deployments()
    return work_pool, [d for d in deployments if d.work_pool_name == pool]


def test_the_local_choice_runs_this_checkout(api: str, azurite: Any, tmp_path: Path) -> None:
    publish(settings_for("mlops-local", api, azurite, tmp_path), code_storage=save_code_storage)
    pool, deployments = asyncio.run(published("mlops-local"))
    assert pool.type == "process"
    assert {d.name for d in deployments} == NAMES
    for deployment in deployments:
        (step,) = deployment.pull_steps
        assert step["prefect.deployments.steps.set_working_directory"]["directory"] == str(
            REPO_ROOT
        )


def test_the_aci_choice_pushes_the_code_and_its_runs_pull_it(
    api: str, azurite: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for("mlops-aci", api, azurite, tmp_path)
    publish(settings, code_storage=save_code_storage)
    pool, deployments = asyncio.run(published("mlops-aci"))
    assert pool.type == "azure-container-instance"
    variables = pool.base_job_template["variables"]["properties"]
    assert variables["identities"]["default"] == [WORKER]
    assert {d.name for d in deployments} == NAMES
    step_name = "prefect_azure.deployments.steps.pull_from_azure_blob_storage"
    for deployment in deployments:
        (step,) = deployment.pull_steps
        pull = step[step_name]
        assert pull["container"] == settings.code_container
        # The credential stays a block reference, resolved when a run pulls.
        assert (
            pull["credentials"] == "{{ prefect.blocks.azure-blob-storage-credentials.mlops-code }}"
        )

    blobs = ContainerClient.from_connection_string(
        azurite.connection_string, settings.code_container
    )
    names = {b.name for b in blobs.list_blobs()}
    folder = deployments[0].pull_steps[0][step_name]["folder"]
    assert f"{folder}/flows/retraining.py" in names
    assert not [n for n in names if "/.venv/" in n or "/.mlops/" in n or n.endswith("/.git")]

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    asyncio.run(run_steps(deployments[0].pull_steps))
    assert (run_dir / "flows" / "retraining.py").read_bytes() == (
        REPO_ROOT / "flows" / "retraining.py"
    ).read_bytes()
    blobs.delete_container()


def test_build_validation_publishes_the_way_mlops_deploy_does(
    api: str, azurite: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI's publish step (tasks.checks.publish_deployments, command not replaced) takes the
    settings' pool: with the ACI choice the deployments land in `mlops-aci` and pull their
    code from the container this run pushed it to, on the API the run reports to."""
    from prefect import flow

    from tasks.checks import CheckResult, publish_deployments

    settings = settings_for("mlops-aci", "http://127.0.0.1:9/api", azurite, tmp_path)
    for key, value in settings.to_env().items():  # as CI would set them
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()

    @flow
    def publish_only() -> CheckResult:
        # The task returns its final state, whose data is the check's result.
        state = publish_deployments(None, 300.0, return_state=True)
        result = state.result(raise_on_failure=False)
        assert isinstance(result, CheckResult), result
        return result

    try:
        result = publish_only()
    finally:
        get_settings.cache_clear()
    assert result.passed, result.tail
    assert result.summary == "published to work pool mlops-aci"
    _, deployments = asyncio.run(published("mlops-aci"))
    assert {d.name for d in deployments} == NAMES
    step_name = "prefect_azure.deployments.steps.pull_from_azure_blob_storage"
    for deployment in deployments:
        (step,) = deployment.pull_steps
        assert step[step_name]["container"] == settings.code_container  # this run's push
    ContainerClient.from_connection_string(
        azurite.connection_string, settings.code_container
    ).delete_container()
