"""A clean environment for tests of the settings object, shared by its test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings import get_settings

# The fewest variables the azure profile starts with.
AZURE_ENV = {
    "MLOPS_PROFILE": "azure",
    "MLOPS_AZURE__SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "MLOPS_AZURE__RESOURCE_GROUP": "rg-mlops",
    "MLOPS_AZURE__WORKSPACE": "ws-mlops",
    "MLOPS_AZURE__STORAGE_ACCOUNT_URL": "https://acct.blob.core.windows.net",
}


def no_mlops_env(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """No MLOPS_* variable and no .env file (the cwd is ``folder``, an empty folder), and
    no cached settings."""
    for key in [k for k in os.environ if k.startswith("MLOPS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(folder)
    get_settings.cache_clear()
