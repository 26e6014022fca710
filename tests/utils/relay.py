"""Loading the Event Grid relay Function's modules (they live outside the packages, in
deployments/azure/functions/blob_relay, and import each other by their bare names)."""

from __future__ import annotations

import functools
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "deployments/azure/functions/blob_relay"
EVENT_GRID = Path(__file__).resolve().parents[1] / "data/event_grid"
PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def relay_modules() -> tuple[ModuleType, ModuleType]:
    """``(relay, function_app)``, imported from the Function's folder."""
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))
    import function_app
    import relay

    return relay, function_app


@functools.cache
def relay_functions() -> dict[str, Any]:
    """The Function app's functions by name. (``get_functions()`` may be called once per
    app: it registers the bindings it returns, and a second call finds them taken.)"""
    _, function_app = relay_modules()
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def webhook() -> Any:
    """The ``events`` webhook's own Python function."""
    return relay_functions()["events"].get_user_function()


def sample(name: str) -> Any:
    """A delivery in Azure's documented shape (tests/data/event_grid/<name>.json)."""
    return json.loads((EVENT_GRID / f"{name}.json").read_text())


def blob_created(
    event_id: str, name: str, *, container: str = "landing", cloud_events: bool = False
) -> dict[str, Any]:
    """The documented BlobCreated sample, for another blob and event id, occurring now."""
    delivery: dict[str, Any] = sample(
        "blob_created.cloudevents" if cloud_events else "blob_created.eventgrid"
    )
    delivery["id"] = event_id
    delivery["eventTime" if "eventTime" in delivery else "time"] = datetime.now(UTC).isoformat()
    delivery["subject"] = f"/blobServices/default/containers/{container}/blobs/{name}"
    delivery["data"]["url"] = f"https://mlopsdata.blob.core.windows.net/{container}/{name}"
    return delivery


def declared_deployments() -> set[str]:
    """The names of the deployments prefect.yaml declares (tests/unit/test_prefect_yaml.py
    pins that set; tests of publishing compare what was published with it)."""
    return {d["name"] for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}


def deployment_trigger(
    deployment: str, match: dict[str, str] | None = None, name: str | None = None
) -> dict[str, Any]:
    """A deployment's event trigger (its first, or the one called ``name``) as prefect.yaml
    declares it, with ``match`` overriding labels of its match (its ``$MLOPS_*`` templates
    are filled in by ``prefect deploy``)."""
    spec = yaml.safe_load(PREFECT_YAML.read_text())
    (declared,) = [d for d in spec["deployments"] if d["name"] == deployment]
    trigger = next(t for t in declared["triggers"] if name in (None, t["name"]))
    trigger["match"].update(match or {})
    return {k: v for k, v in trigger.items() if k != "type"}


def runs_of(deployment_id: uuid.UUID) -> list[Any]:
    """The flow runs of a deployment, as the API lists them."""
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
