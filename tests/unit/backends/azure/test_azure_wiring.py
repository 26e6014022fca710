"""The Azure profile's wiring: which adapters, one lazily built workspace client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, cast

import pytest
from pydantic import SecretStr

from backends import get_backends
from backends.azure.client import LazyMLClient, workspace_client
from backends.azure.compute import AmlCompute
from backends.azure.keyvault import KeyVaultSecrets
from backends.azure.registry import AmlModelRegistry
from backends.blob_datalake import BlobDataLake
from core.interfaces import Compute, DataLake, ModelRegistry
from core.settings import AzureSettings, Settings

AZURE = AzureSettings(
    subscription_id="sub-1",
    resource_group="rg-1",
    workspace="ws-1",
    storage_account_url="https://lake.blob.core.windows.net",
)


def test_azure_profile_builds_the_azure_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity

    credentials: list[Any] = []

    class Credential:
        def __init__(self) -> None:
            credentials.append(self)

        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("get_backends must not ask for a token")

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)

    backends = get_backends(Settings(profile="azure", azure=AZURE))

    assert isinstance(backends.datalake, BlobDataLake) and isinstance(backends.datalake, DataLake)
    assert backends.datalake.endpoint == "https://lake.blob.core.windows.net"
    assert isinstance(backends.compute, AmlCompute) and isinstance(backends.compute, Compute)
    assert isinstance(backends.registry, AmlModelRegistry)
    assert isinstance(backends.registry, ModelRegistry)
    # One shared client, not built yet; the code snapshot comes from this repository.
    assert backends.compute._client is backends.registry._client
    client: Any = backends.compute._client
    assert isinstance(client, LazyMLClient) and not client.built
    assert (backends.compute.code_dir / "training" / "train.py").is_file()
    assert backends.compute.settings.workspace == "ws-1"
    assert len(credentials) == 1  # shared by the data lake and the workspace client
    assert client.resolve()._credential is credentials[0]


def test_a_connection_string_overrides_the_account_url() -> None:
    settings = Settings(
        profile="azure",
        azure=AZURE,
        blob_connection_string=SecretStr(
            "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=a2V5;"
            "EndpointSuffix=core.windows.net"
        ),
    )
    assert get_backends(settings).datalake.endpoint == "https://other.blob.core.windows.net"  # type: ignore[attr-defined]


def test_workspace_client_builds_one_client_on_first_use() -> None:
    from azure.ai.ml import MLClient

    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("building the client must not ask for a token")

    lazy: Any = workspace_client(AZURE, credential=Credential())
    assert not lazy.built

    assert (lazy.subscription_id, lazy.resource_group_name, lazy.workspace_name) == (
        "sub-1",
        "rg-1",
        "ws-1",
    )
    real = lazy.resolve()
    assert isinstance(real, MLClient) and lazy.resolve() is real


def test_code_dir_without_training_package_is_refused(tmp_path: Path, aml: Any) -> None:
    from core.interfaces import BackendError, TrainingJobSpec

    compute = AmlCompute(aml.client, AZURE, tmp_path)
    spec = TrainingJobSpec(
        data_uri="https://lake.blob.core.windows.net/c/d.csv", params={}, experiment="e"
    )
    with pytest.raises(BackendError, match="no training package"):
        compute.submit(spec)
    assert aml.transport.requests == []


def test_azure_profile_loads_azure_ml_only_when_used() -> None:
    code = (
        "import sys; from backends import get_backends; from core.settings import Settings, "
        "AzureSettings\n"
        "azure = AzureSettings(subscription_id='s', resource_group='r', workspace='w', "
        "storage_account_url='https://a.blob.core.windows.net')\n"
        "get_backends(Settings(profile='azure', azure=azure))\n"
        "print('azure.ai.ml' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[4]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


RELEASE = AZURE.model_copy(
    update={
        "registry": "mlops.azurecr.io",
        "location": "westeurope",
        "kubernetes_compute": "aks-prod",
        "key_vault_url": "https://kvmlopsapp.vault.azure.net/",
        "qa_identity": "/subscriptions/s/resourceGroups/rg-1/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-qa",
        "endpoint_identity": "/subscriptions/s/resourceGroups/rg-1/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-endpoint",
        "endpoint_prefix": "mlops-scoring",
        "qa_subnet_id": "/subscriptions/s/resourceGroups/rg-1/providers/Microsoft.Network/"
        "virtualNetworks/vnet-mlops/subnets/qa",
        "autoscale_min_instances": 3,
        "autoscale_max_instances": 9,
        "autoscale_target_utilization": 55,
        "autoscale_polling_seconds": 20,
    }
)


def test_azure_release_builds_acr_aci_and_aks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import azure.identity

    from backends import get_release_backends
    from backends.azure.aci import AciTarget
    from backends.azure.acr import AcrImageBuilder
    from backends.azure.aks import AksOnlineTarget, Autoscale
    from backends.routed import TargetsByEnvironment
    from core.interfaces import DeploymentTarget, ImageBuilder

    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("building the release backends must not ask for a token")

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)
    settings = Settings(profile="azure", azure=RELEASE, state_dir=tmp_path)

    release = get_release_backends(settings, start_engine=False)

    assert release.kind == "azure"
    assert isinstance(release.builder, AcrImageBuilder)
    assert isinstance(release.builder, ImageBuilder)
    assert release.builder.login_server == "mlops.azurecr.io"
    target = release.target
    assert isinstance(target, TargetsByEnvironment) and isinstance(target, DeploymentTarget)
    qa, production = target.target("qa"), target.target("production")
    assert isinstance(qa, AciTarget) and isinstance(production, AksOnlineTarget)
    assert (qa.resource_group, qa.location, qa.registry_server) == (
        "rg-1",
        "westeurope",
        "mlops.azurecr.io",
    )
    assert qa.registry_identity == RELEASE.qa_identity
    assert qa.subnet_id == RELEASE.qa_subnet_id
    assert qa.name_prefix == production.name_prefix == "mlops-scoring"
    assert (production.kind, production.compute) == ("kubernetes", "aks-prod")
    assert production.autoscale == Autoscale(
        min_instances=3, max_instances=9, target_utilization=55, polling_seconds=20
    )
    assert production.identity == RELEASE.endpoint_identity
    # Keys come from the project's Key Vault, through the same credential.
    vault = production._secrets
    assert isinstance(vault, KeyVaultSecrets)
    assert vault.vault_url == "https://kvmlopsapp.vault.azure.net"
    assert production.min_replicas == settings.production_replicas
    # The same credential everywhere: one sign-in for ACR, ACI and Azure ML.
    client: Any = production._client
    assert isinstance(client, LazyMLClient) and not client.built
    credential = release.builder._credential
    assert isinstance(credential, Credential)
    assert qa._client._config.credential is credential
    assert client.resolve()._credential is credential


def test_azure_release_without_its_settings_names_them(tmp_path: Path) -> None:
    from backends import get_release_backends
    from core.interfaces import BackendError

    settings = Settings(profile="azure", azure=AZURE, state_dir=tmp_path)
    with pytest.raises(BackendError) as caught:
        get_release_backends(settings, start_engine=False)
    message = str(caught.value)
    assert message.startswith("a release in Azure needs: MLOPS_AZURE__REGISTRY")
    assert "MLOPS_AZURE__KEY_VAULT_URL" in message and "MLOPS_AZURE__QA_IDENTITY" in message


def test_one_setting_makes_production_a_managed_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import azure.identity

    from backends import get_release_backends
    from backends.azure.aks import AksOnlineTarget

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: object())
    managed = RELEASE.model_copy(
        update={"production_target": "managed", "online_instance_type": "Standard_DS3_v2"}
    )
    settings = Settings(profile="azure", azure=managed, state_dir=tmp_path)

    target: Any = get_release_backends(settings, start_engine=False).target
    production = target.target("production")

    assert isinstance(production, AksOnlineTarget)
    assert (production.kind, production.compute) == ("managed", "")
    assert production.instance_type == "Standard_DS3_v2"
    without_size = managed.model_copy(update={"online_instance_type": ""})
    assert without_size.release_missing() == ["MLOPS_AZURE__ONLINE_INSTANCE_TYPE"]


@pytest.mark.parametrize(
    ("image_build", "work_pool", "expected"),
    [
        ("auto", "mlops-aci", "AcrTaskImageBuilder"),  # flow runs on ACI have no engine
        ("auto", "mlops-local", "AcrImageBuilder"),
        ("acr-task", "mlops-local", "AcrTaskImageBuilder"),
        ("docker", "mlops-aci", "AcrImageBuilder"),
    ],
)
def test_one_setting_chooses_where_the_image_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, image_build: str, work_pool: str, expected: str
) -> None:
    import azure.identity

    from backends import get_release_backends
    from backends.azure.acr_task import API_VERSION, AcrTaskImageBuilder

    credential = object()
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: credential)
    settings = Settings(
        profile="azure",
        azure=RELEASE.model_copy(update={"image_build": image_build}),
        work_pool=cast(Literal["mlops-local", "mlops-aci"], work_pool),
        state_dir=tmp_path,
    )

    builder: Any = get_release_backends(settings, start_engine=False).builder

    assert type(builder).__name__ == expected
    if isinstance(builder, AcrTaskImageBuilder):
        assert (builder.registry, builder.resource_group) == ("mlops", "rg-1")
        assert builder.client._config.credential is credential
        assert builder.client._config.subscription_id == RELEASE.subscription_id
        assert builder.client.registries._api_version == API_VERSION


@pytest.mark.parametrize("image_build", ["docker", "acr-task"])
@pytest.mark.parametrize("connection_string", ["InstrumentationKey=0000;IngestionEndpoint=x", ""])
def test_a_connection_string_puts_the_exporter_in_the_image_and_the_secret_in_the_targets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, image_build: str, connection_string: str
) -> None:
    import azure.identity

    from backends import get_release_backends

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: object())
    settings = Settings(
        profile="azure",
        azure=RELEASE.model_copy(update={"image_build": image_build}),
        state_dir=tmp_path,
        appinsights_connection_string=SecretStr(connection_string),
    )

    release: Any = get_release_backends(settings, start_engine=False)

    builder = release.builder
    images = builder.builder if image_build == "docker" else builder.context_builder
    assert images.telemetry is bool(connection_string)
    expected = connection_string or None
    assert release.target.target("qa")._appinsights == expected
    assert release.target.target("production")._appinsights == expected
