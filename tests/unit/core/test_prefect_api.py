"""Which Prefect API the project's clients use: the local server by default, another one only
by the project's own MLOPS_PREFECT_API_URL in the azure profile (README step 6), never by a
stray PREFECT_API_URL; the server ``mlops up`` starts always talks to itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.deploy import deploy_env, prefect_env, server_env
from core.settings import Settings, SettingsError, get_settings, load_settings
from tests.utils.settings_env import AZURE_ENV, no_mlops_env

REMOTE = "https://prefect.example.org/api"
LOCAL = "http://127.0.0.1:4200/api"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MLOPS_* variable, no .env file, and a shell that points Prefect elsewhere."""
    no_mlops_env(monkeypatch, tmp_path)
    monkeypatch.setenv("PREFECT_API_URL", "http://somebody-elses-server:4200/api")
    yield
    get_settings.cache_clear()


def azure(monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
    for key, value in {**AZURE_ENV, **extra}.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_the_local_stack_uses_its_own_server_whatever_the_shell_says() -> None:
    settings = load_settings()
    assert settings.prefect_api_url == settings.local_prefect_api_url == LOCAL
    assert settings.prefect_api_is_local
    assert prefect_env(settings)["PREFECT_API_URL"] == LOCAL
    assert prefect_env(settings)["PREFECT_UI_URL"] == "http://127.0.0.1:4200"
    # Derived, so not passed on: a worker given another port derives its own again.
    assert "MLOPS_PREFECT_API_URL" not in settings.to_env()


def test_the_azure_profile_ignores_prefect_api_url_too(monkeypatch: pytest.MonkeyPatch) -> None:
    assert azure(monkeypatch).prefect_api_url == LOCAL


def test_mlops_prefect_api_url_wins_for_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = azure(monkeypatch, MLOPS_PREFECT_API_URL=REMOTE + "/")
    assert settings.prefect_api_url == REMOTE and not settings.prefect_api_is_local
    for env in (prefect_env(settings), deploy_env(settings)):
        assert env["PREFECT_API_URL"] == REMOTE
        assert "PREFECT_UI_URL" not in env  # Prefect derives it (Cloud's UI is another host)
    assert settings.prefect_ui_url == "https://prefect.example.org"
    # Workers and flow-run containers started from these settings use the same API.
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLOPS_PREFECT_API_URL")
    assert load_settings().prefect_api_is_local  # (without it: the local server)
    monkeypatch.setenv("MLOPS_PREFECT_API_URL", settings.to_env()["MLOPS_PREFECT_API_URL"])
    assert load_settings().prefect_api_url == REMOTE


def test_the_local_server_talks_to_itself_even_then(monkeypatch: pytest.MonkeyPatch) -> None:
    env = server_env(azure(monkeypatch, MLOPS_PREFECT_API_URL=REMOTE))
    assert env["PREFECT_API_URL"] == LOCAL
    assert env["PREFECT_UI_URL"] == "http://127.0.0.1:4200"


def test_the_local_profile_refuses_another_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_PREFECT_API_URL", REMOTE)
    with pytest.raises(SettingsError, match="MLOPS_PREFECT_API_URL names another Prefect API"):
        load_settings()
    monkeypatch.setenv("MLOPS_PREFECT_API_URL", "http://127.0.0.1:4321/api")
    assert load_settings(prefect_port=4321).prefect_api_is_local  # its own server, spelled out
