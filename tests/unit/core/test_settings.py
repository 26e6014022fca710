"""The one settings object: defaults, ``MLOPS_*`` overrides and errors that name the variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from pydantic import SecretStr

from core.settings import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    PROJECT_ROOT,
    AzureSettings,
    SettingsError,
    get_settings,
    load_settings,
)
from tests.utils.settings_env import AZURE_ENV, no_mlops_env


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MLOPS_* variable and no .env file (the cwd is an empty folder)."""
    no_mlops_env(monkeypatch, tmp_path)
    yield
    get_settings.cache_clear()


def test_an_absolute_state_dir_is_kept(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "elsewhere")
    assert settings.state_path == tmp_path / "elsewhere"
    assert load_settings(state_dir=Path("state/x")).state_path == PROJECT_ROOT / "state" / "x"


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.profile == "local"
    assert settings.model_name == "diabetes-ridge"
    assert settings.state_dir == Path(".mlops")
    # Relative to the project root, wherever the command runs (the tests run in tmp_path).
    assert settings.state_path == PROJECT_ROOT / ".mlops"
    assert settings.run_path == PROJECT_ROOT / ".mlops" / "run"
    assert (settings.azurite_host, settings.azurite_port) == ("127.0.0.1", 10000)
    assert settings.prefect_api_url == "http://127.0.0.1:4200/api"
    assert settings.prefect_ui_url == "http://127.0.0.1:4200"
    assert settings.release_target == "auto"
    assert settings.blob_connection_string is None
    assert settings.azure.compute_name == "cpu-cluster"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_PREFECT_PORT", "4321")
    monkeypatch.setenv("MLOPS_MODEL_NAME", "other-model")
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MLOPS_RELEASE_TARGET", "process")
    settings = load_settings()
    assert settings.prefect_port == 4321
    assert settings.prefect_api_url == "http://127.0.0.1:4321/api"
    assert settings.model_name == "other-model"
    assert settings.registry_path == tmp_path / "elsewhere" / "registry"
    assert settings.release_target == "process"


def test_nested_azure_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_AZURE__SUBSCRIPTION_ID", "sub-123")
    monkeypatch.setenv("MLOPS_AZURE__JOB_POLL_SECONDS", "2.5")
    settings = load_settings()
    assert settings.azure.subscription_id == "sub-123"
    assert settings.azure.job_poll_seconds == 2.5
    assert settings.azure.compute_name == "cpu-cluster"  # the rest keeps its defaults
    assert settings.profile == "local"  # azure fields alone do not switch the profile


def test_dotenv_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("MLOPS_QA_PORT=8123\nMLOPS_PRODUCTION_PORT=8124\n")
    monkeypatch.setenv("MLOPS_PRODUCTION_PORT", "9000")
    settings = load_settings()
    assert (settings.qa_port, settings.production_port) == (8123, 9000)


def test_keyword_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_AZURITE_PORT", "11000")
    assert load_settings(azurite_port=12000).azurite_port == 12000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLOPS_AZURITE_PORT", "not-a-port"),
        ("MLOPS_AZURITE_PORT", "70000"),
        ("MLOPS_PREFECT_PORT", "0"),
        ("MLOPS_PROFILE", "cloud"),
        ("MLOPS_RELEASE_TARGET", "kubernetes"),
        ("MLOPS_MODEL_NAME", "Not A Name"),
        ("MLOPS_PRODUCTION_REPLICAS", "1"),
        ("MLOPS_AZURE__JOB_POLL_SECONDS", "soon"),
        ("MLOPS_WATCH_INTERVAL_SECONDS", "0.5"),  # faster than a poll can be useful
        ("MLOPS_WATCH_INTERVAL_SECONDS", "3601"),  # slower than the hourly safety net
        ("MLOPS_WATCH_INTERVAL_SECONDS", "often"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("invalid settings:")
    assert f"{variable}:" in message
    # get_settings() fails the same way (and caches nothing).
    with pytest.raises(SettingsError, match=variable):
        get_settings()


def test_every_invalid_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_AZURITE_PORT", "x")
    monkeypatch.setenv("MLOPS_QA_PORT", "y")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "MLOPS_AZURITE_PORT" in str(caught.value) and "MLOPS_QA_PORT" in str(caught.value)


def test_invalid_keyword_override_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MLOPS_AZURITE_PORT"):
        load_settings(azurite_port=0)


def test_azure_profile_without_workspace_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_PROFILE", "azure")
    monkeypatch.setenv("MLOPS_AZURE__SUBSCRIPTION_ID", "sub-123")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "profile 'azure' needs" in message
    for missing in (
        "MLOPS_AZURE__RESOURCE_GROUP",
        "MLOPS_AZURE__WORKSPACE",
        "MLOPS_AZURE__STORAGE_ACCOUNT_URL",
    ):
        assert missing in message
    assert "MLOPS_AZURE__SUBSCRIPTION_ID" not in message  # that one is set


def test_azure_profile_with_everything_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AZURE_ENV.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.profile == "azure"
    assert settings.azure.workspace == "ws-mlops"


def test_azure_profile_takes_a_connection_string_instead_of_an_account_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in AZURE_ENV.items():
        if key != "MLOPS_AZURE__STORAGE_ACCOUNT_URL":
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLOPS_BLOB_CONNECTION_STRING", "UseDevelopmentStorage=true")
    assert load_settings().profile == "azure"


def test_blob_connection_defaults_to_azurite(monkeypatch: pytest.MonkeyPatch) -> None:
    default = load_settings().blob_connection
    assert f"AccountName={AZURITE_ACCOUNT};" in default
    assert f"AccountKey={AZURITE_KEY};" in default
    assert f"BlobEndpoint=http://127.0.0.1:10000/{AZURITE_ACCOUNT};" in default

    monkeypatch.setenv("MLOPS_AZURITE_PORT", "12345")
    moved = load_settings().blob_connection
    client = BlobServiceClient.from_connection_string(moved)  # no I/O
    assert client.url.rstrip("/") == f"http://127.0.0.1:12345/{AZURITE_ACCOUNT}"
    assert client.account_name == AZURITE_ACCOUNT


def test_a_connection_string_is_used_and_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=s3cr3t-key-value=="
    monkeypatch.setenv("MLOPS_BLOB_CONNECTION_STRING", secret)
    settings = load_settings()
    assert settings.blob_connection == secret
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "s3cr3t-key-value" not in shown


def test_azure_release_settings_name_what_a_release_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in AZURE_ENV.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()  # retraining needs none of them
    assert settings.azure.release_missing() == [
        "MLOPS_AZURE__REGISTRY",
        "MLOPS_AZURE__LOCATION",
        "MLOPS_AZURE__KEY_VAULT_URL",
        "MLOPS_AZURE__QA_IDENTITY",
        "MLOPS_AZURE__QA_SUBNET_ID",
        "MLOPS_AZURE__ENDPOINT_IDENTITY",
    ]
    for key, value in RELEASE_ENV.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.azure.release_missing() == []
    assert settings.azure.kubernetes_compute == "aks-production"
    assert settings.azure.qa_api_key_secret == "scoring-qa-api-key"


RELEASE_ENV = {
    "MLOPS_AZURE__REGISTRY": "mlops.azurecr.io",
    "MLOPS_AZURE__LOCATION": "westeurope",
    "MLOPS_AZURE__KEY_VAULT_URL": "https://kvmlopsapp.vault.azure.net/",
    "MLOPS_AZURE__QA_IDENTITY": "/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-qa",
    "MLOPS_AZURE__QA_SUBNET_ID": "/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.Network/virtualNetworks/vnet-mlops/subnets/qa",
    "MLOPS_AZURE__ENDPOINT_IDENTITY": "/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-endpoint",
}


def test_azure_settings_are_references_and_reach_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {**AZURE_ENV, **RELEASE_ENV}.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    # No Azure setting is a secret: the keys stay in Key Vault, the settings name them.
    assert not any(
        isinstance(getattr(settings.azure, name), SecretStr) for name in AzureSettings.model_fields
    )
    env = settings.to_env()
    assert env["MLOPS_AZURE__KEY_VAULT_URL"] == "https://kvmlopsapp.vault.azure.net/"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    worker = load_settings()  # a worker started with to_env() sees the same
    assert worker.azure == settings.azure and worker.state_path == settings.state_path


@pytest.mark.parametrize("role", ["MLOPS_CURATED_CONTAINER", "MLOPS_DEAD_LETTER_CONTAINER"])
def test_two_container_roles_cannot_share_a_container(
    monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    """Issue 8: a retrain on a landing container that is also curated would delete the
    curated manifest it took for new data."""
    monkeypatch.setenv(role, "landing")
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "MLOPS_LANDING_CONTAINER" in message and role in message
    assert "'landing'" in message


def test_poison_file_settings_have_defaults() -> None:
    settings = load_settings()
    assert settings.dead_letter_container == "dead-letter"
    assert settings.max_file_attempts == 3 and settings.max_file_bytes > 0


def test_production_autoscale_and_target_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_AZURE__PRODUCTION_TARGET", "managed")
    monkeypatch.setenv("MLOPS_AZURE__AUTOSCALE_MAX_INSTANCES", "8")
    azure = load_settings().azure
    assert (azure.production_target, azure.autoscale_min_instances) == ("managed", 2)
    assert (azure.autoscale_max_instances, azure.autoscale_target_utilization) == (8, 70)

    monkeypatch.setenv("MLOPS_AZURE__PRODUCTION_TARGET", "aci")
    monkeypatch.setenv("MLOPS_AZURE__AUTOSCALE_TARGET_UTILIZATION", "101")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "MLOPS_AZURE__PRODUCTION_TARGET:" in str(caught.value)
    assert "MLOPS_AZURE__AUTOSCALE_TARGET_UTILIZATION:" in str(caught.value)


def test_autoscale_minimum_above_maximum_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_AZURE__AUTOSCALE_MIN_INSTANCES", "5")
    monkeypatch.setenv("MLOPS_AZURE__AUTOSCALE_MAX_INSTANCES", "4")
    with pytest.raises(SettingsError, match=r"AUTOSCALE_MIN_INSTANCES \(5\) is more than"):
        load_settings()


def test_a_release_in_azure_needs_the_qa_subnet_and_its_production_target() -> None:
    ready = AzureSettings(
        registry="r.azurecr.io",
        location="westeurope",
        key_vault_url="https://kv.vault.azure.net/",
        qa_identity="id-qa",
        qa_subnet_id="subnet-qa",
        endpoint_identity="id-endpoint",
    )
    assert ready.release_missing() == []
    assert ready.model_copy(update={"qa_subnet_id": ""}).release_missing() == [
        "MLOPS_AZURE__QA_SUBNET_ID"
    ]
    kubernetes = ready.model_copy(update={"kubernetes_compute": ""})
    assert kubernetes.release_missing() == ["MLOPS_AZURE__KUBERNETES_COMPUTE"]
    assert kubernetes.model_copy(update={"production_target": "managed"}).release_missing() == [
        "MLOPS_AZURE__ONLINE_INSTANCE_TYPE"
    ]


def test_the_watcher_polls_every_5_s_by_default_and_takes_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().watch_interval_seconds == 5.0
    monkeypatch.setenv("MLOPS_WATCH_INTERVAL_SECONDS", "1")
    assert load_settings().watch_interval_seconds == 1.0
    monkeypatch.setenv("MLOPS_WATCH_INTERVAL_SECONDS", "3600")
    settings = load_settings()
    assert settings.watch_interval_seconds == 3600.0
    # The worker hands it to the flow runs it starts (the watcher reads it there too).
    assert settings.to_env()["MLOPS_WATCH_INTERVAL_SECONDS"] == "3600.0"
