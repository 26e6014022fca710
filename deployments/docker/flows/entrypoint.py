#!/opt/venv/bin/python3
"""Start a command with the Prefect credential read from Key Vault, never from the group's env.

The flows' image runs every flow run (and the ACI worker itself) through this script:
prefect-azure's worker puts it in front of the run's command (the pool's ``entrypoint``).
The container group runs as a user-assigned managed identity (``AZURE_CLIENT_ID``), which
may read the app vault; the secret ``MLOPS_AZURE__PREFECT_CREDENTIAL_SECRET`` of
``MLOPS_AZURE__KEY_VAULT_URL`` fills ``MLOPS_AZURE__PREFECT_CREDENTIAL_ENV``
(``PREFECT_API_KEY`` or ``PREFECT_API_AUTH_STRING``) in this process only, then the command
replaces it. Without a vault URL (an open, local server) the command starts as it is.

Standalone on purpose: it runs before the flow code is pulled, so it imports only the
standard library and the Azure SDK installed in the image.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

CREDENTIAL_ENVS = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")


def read_secret(vault_url: str, name: str) -> str:
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    value = SecretClient(vault_url, DefaultAzureCredential()).get_secret(name).value
    if not value:
        raise RuntimeError(f"secret {name!r} in {vault_url} is empty")
    return value


def command_env(
    env: Mapping[str, str], read: Callable[[str, str], str] = read_secret
) -> dict[str, str]:
    """``env`` with the Prefect credential filled in from Key Vault (see the module docstring)."""
    out = dict(env)
    vault = env.get("MLOPS_AZURE__KEY_VAULT_URL", "")
    if not vault:
        return out
    target = env.get("MLOPS_AZURE__PREFECT_CREDENTIAL_ENV") or "PREFECT_API_KEY"
    if target not in CREDENTIAL_ENVS:
        raise ValueError(f"MLOPS_AZURE__PREFECT_CREDENTIAL_ENV must be one of {CREDENTIAL_ENVS}")
    secret = env.get("MLOPS_AZURE__PREFECT_CREDENTIAL_SECRET") or "prefect-api-credential"
    for name in CREDENTIAL_ENVS:
        out.pop(name, None)  # whatever the group was given (prefect-azure sets them to "")
    out[target] = read(vault, secret)
    return out


def main(argv: Sequence[str]) -> None:
    if not argv:
        sys.exit("usage: entrypoint COMMAND [ARG ...]")
    try:
        env = command_env(os.environ)
    except Exception as exc:  # the reason, never a value: secrets are not in exceptions here
        sys.exit(f"cannot read the Prefect credential from Key Vault: {type(exc).__name__}: {exc}")
    os.execvpe(argv[0], list(argv), env)


if __name__ == "__main__":
    main(sys.argv[1:])
