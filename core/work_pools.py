"""The two places prefect.yaml's deployments can run, chosen by ``MLOPS_WORK_POOL``.

- ``mlops-local``: a process worker; flow runs execute this checkout
  (``set_working_directory``). prefect.yaml is published as it is.
- ``mlops-aci``: prefect-azure's Azure Container Instances worker; each flow run is a
  container group of the flows' image that pulls its code from Azure Blob Storage.
  prefect.yaml is published with ``push``, ``pull`` and every deployment's ``work_pool``
  replaced by ``definitions.aci`` (the same four deployments, nothing else changes).

The pools' base job templates are versioned in ``deployments/work-pools/``; the ACI one gets
this estate's values (image digest, identity, registry, region, subnet) from the settings.
Its runs join the `flows` subnet of QA's network (main.bicep's MLOPS_AZURE__FLOW_SUBNET_ID):
the release flow reaches the QA group's private IP from there.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

from core.settings import Settings
from core.version import REPO_ROOT

LOCAL_POOL = "mlops-local"
ACI_POOL = "mlops-aci"
POOL_TYPES = {LOCAL_POOL: "process", ACI_POOL: "azure-container-instance"}
TEMPLATES = REPO_ROOT / "deployments" / "work-pools"
PREFECT_YAML = REPO_ROOT / "prefect.yaml"
# The prefect-azure block the code push/pull steps read (backends/azure/code_storage.py).
CODE_STORAGE_BLOCK = "mlops-code"
# Settings that stay on the machine that publishes: a secret, and a path of that machine.
_NOT_FOR_FLOW_RUNS = ("MLOPS_BLOB_CONNECTION_STRING", "MLOPS_STATE_DIR")
_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


class WorkPoolError(ValueError):
    """The chosen work pool cannot be set up from these settings; the message says why."""


def template_path(pool: str) -> Path:
    return TEMPLATES / f"{pool}.json"


def aci_missing(settings: Settings) -> list[str]:
    """The ``MLOPS_AZURE__*`` settings an ACI flow run needs and lacks."""
    azure = settings.azure
    needed = {
        "subscription_id": azure.subscription_id,
        "resource_group": azure.resource_group,
        "registry": azure.registry,
        "key_vault_url": azure.key_vault_url,
        "worker_identity": azure.worker_identity,
        "worker_client_id": azure.worker_client_id,
        "flow_image": azure.flow_image,
        # The release flow smoke tests QA on its private IP: a run outside the network cannot.
        "flow_subnet_id": azure.flow_subnet_id,
    }
    return [f"MLOPS_AZURE__{name.upper()}" for name, value in needed.items() if not value]


def flow_run_env(settings: Settings) -> dict[str, str]:
    """What a flow-run container gets as environment: the settings minus secrets, and the
    client id DefaultAzureCredential signs in with. The Prefect credential is not here: the
    image's entrypoint reads it from Key Vault (``MLOPS_AZURE__PREFECT_CREDENTIAL_SECRET``)."""
    env = {k: v for k, v in settings.to_env().items() if k not in _NOT_FOR_FLOW_RUNS}
    env["MLOPS_WORK_POOL"] = ACI_POOL
    env["AZURE_CLIENT_ID"] = settings.azure.worker_client_id
    return env


def aci_job_template(settings: Settings, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``mlops-aci`` base job template with this estate's values as defaults.

    Raises:
        WorkPoolError: A needed setting is missing, or the image is not pinned by digest.
    """
    missing = aci_missing(settings)
    if missing:
        raise WorkPoolError(f"work pool {ACI_POOL} needs: {', '.join(missing)}")
    azure = settings.azure
    if not _DIGEST.match(azure.flow_image):
        raise WorkPoolError(
            f"MLOPS_AZURE__FLOW_IMAGE must name the image by digest (<repo>@sha256:<64 hex>), "
            f"not {azure.flow_image!r}: a tag can move between runs"
        )
    template = copy.deepcopy(base or json.loads(template_path(ACI_POOL).read_text()))
    props = template["variables"]["properties"]
    props["image"]["default"] = azure.flow_image
    props["subscription_id"]["default"] = azure.subscription_id
    props["resource_group_name"]["default"] = azure.resource_group
    props["identities"]["default"] = [azure.worker_identity]
    # ACI pulls the image as the same identity (AcrPush includes pull): no registry password.
    props["image_registry"]["default"] = {
        "registry_url": azure.registry,
        "identity": azure.worker_identity,
    }
    props["subnet_ids"]["default"] = [azure.flow_subnet_id]
    if azure.location:
        props["location"]["default"] = azure.location
    props["env"]["default"] = {**props["env"].get("default", {}), **flow_run_env(settings)}
    return dict(template)


def pool_template(settings: Settings, pool: str) -> dict[str, Any]:
    """The base job template to create or update ``pool`` with."""
    if pool == ACI_POOL:
        return aci_job_template(settings)
    return dict(json.loads(template_path(pool).read_text()))


def prefect_spec(pool: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """prefect.yaml as published to ``pool`` (see the module docstring)."""
    spec = copy.deepcopy(spec if spec is not None else yaml.safe_load(PREFECT_YAML.read_text()))
    if pool == LOCAL_POOL:
        return spec
    choice = spec["definitions"]["aci"]
    spec["push"] = copy.deepcopy(choice["push"])
    spec["pull"] = copy.deepcopy(choice["pull"])
    for deployment in spec["deployments"]:
        deployment["work_pool"] = copy.deepcopy(choice["work_pool"])
    return spec


def prefect_file(settings: Settings) -> Path:
    """The file ``prefect deploy --prefect-file`` publishes for the settings' work pool."""
    if settings.work_pool == LOCAL_POOL:
        return PREFECT_YAML
    path = settings.state_path / "deploy" / f"prefect.{settings.work_pool}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by core/work_pools.py from prefect.yaml: edit that file instead.\n"
    body = yaml.safe_dump(prefect_spec(settings.work_pool), sort_keys=False)
    path.write_text(header + body, encoding="utf-8")
    return path
