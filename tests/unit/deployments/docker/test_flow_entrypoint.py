"""The flows' image entrypoint: the Prefect credential comes from Key Vault into the command's
environment only, replacing whatever the container group was given; the command then replaces
the entrypoint process."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[4] / "deployments" / "docker" / "flows" / "entrypoint.py"
VAULT = "https://kvmlops.vault.azure.net/"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flow_entrypoint", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


entrypoint = load()


def test_the_credential_comes_from_the_named_secret() -> None:
    asked: list[tuple[str, str]] = []

    def read(vault: str, name: str) -> str:
        asked.append((vault, name))
        return "from-the-vault"

    group_env = {
        "MLOPS_AZURE__KEY_VAULT_URL": VAULT,
        "MLOPS_AZURE__PREFECT_CREDENTIAL_SECRET": "prefect-api-credential",
        "MLOPS_AZURE__PREFECT_CREDENTIAL_ENV": "PREFECT_API_AUTH_STRING",
        "PREFECT_API_KEY": "",
        "PREFECT_API_AUTH_STRING": "",
        "PREFECT_API_URL": "https://prefect.example/api",
    }
    env = entrypoint.command_env(group_env, read)
    assert asked == [(VAULT, "prefect-api-credential")]
    assert env["PREFECT_API_AUTH_STRING"] == "from-the-vault"
    assert "PREFECT_API_KEY" not in env
    assert env["PREFECT_API_URL"] == "https://prefect.example/api"
    assert group_env["PREFECT_API_AUTH_STRING"] == ""  # the caller's mapping is untouched


def test_without_a_vault_nothing_is_read() -> None:
    def read(vault: str, name: str) -> str:
        raise AssertionError("no vault configured: nothing to read")

    assert entrypoint.command_env({"PREFECT_API_URL": "http://127.0.0.1:4200/api"}, read) == {
        "PREFECT_API_URL": "http://127.0.0.1:4200/api"
    }


def test_an_unknown_target_variable_is_refused() -> None:
    env = {"MLOPS_AZURE__KEY_VAULT_URL": VAULT, "MLOPS_AZURE__PREFECT_CREDENTIAL_ENV": "HOME"}
    with pytest.raises(ValueError, match="PREFECT_CREDENTIAL_ENV"):
        entrypoint.command_env(env, lambda vault, name: "x")


def test_the_command_replaces_the_entrypoint_and_sees_the_environment() -> None:
    probe = "import os; print(os.environ.get('PREFECT_API_URL'))"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), sys.executable, "-c", probe],
        env={"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://127.0.0.1:4200/api"


def test_an_unreadable_vault_stops_before_the_command() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), sys.executable, "-c", "print('ran')"],
        env={"MLOPS_AZURE__KEY_VAULT_URL": "not-a-vault-url", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "ran" not in done.stdout
    assert "cannot read the Prefect credential from Key Vault" in done.stderr
