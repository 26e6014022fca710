"""Azure ML online endpoints and deployments behind a ``RecordingTransport``, as ARM keeps them.

Shapes follow the REST specification of the api-versions azure-ai-ml 1.35 sends
(azure-rest-api-specs, ``Microsoft.MachineLearningServices/preview/2022-02-01-preview`` and
``2023-04-01-preview``, ``mfe.json`` and its ``OnlineEndpoint`` / ``OnlineDeployment``
examples): an endpoint is ``{id, name, type, kind, location, identity, tags, systemData,
properties: {authMode, compute, description, scoringUri, swaggerUri, traffic,
provisioningState}}``; a deployment ``{id, name, type, location, sku: {capacity}, tags,
systemData, properties: {endpointComputeType, environmentId, environmentVariables,
instanceType, scaleSettings, provisioningState, ...}}``; ``listKeys`` answers
``{primaryKey, secondaryKey}``. A create or update is long-running: ``201`` with the resource
(``provisioningState`` ``Creating``) and an ``Azure-AsyncOperation`` URL
(``.../locations/<region>/mfeOperationsStatus/<id>``) whose status body is
``{id, name, status, startTime, endTime[, error]}``; a delete is ``202`` with a ``Location``
to poll, answered ``200`` once done (``final-state-via: location``). One deviation:
``Retry-After`` is 0 (the specification says 10 to 600 s) to keep the tests fast.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.utils.azure_http import ARM, SUB, WS, Recorded, RecordingTransport, Reply

ENDPOINTS = rf"/workspaces/{WS}/onlineEndpoints"
REGION = "westeurope"
KEY = "primary-endpoint-k3y-0123456789abcdef"
SECONDARY = "secondary-endpoint-k3y-0123456789abcdef"
VAULT = "https://kvmlopsapp.vault.azure.net"
# What Azure ML fills in for a Kubernetes instance type (the SDK cannot read a Kubernetes
# deployment without them).
INSTANCE_RESOURCES = {
    "containerResourceRequests": {"cpu": "100m", "memory": "2Gi"},
    "containerResourceLimits": {"cpu": "2", "memory": "2Gi"},
}
SYSTEM_DATA = {
    "createdAt": "2026-12-01T10:00:00Z",
    "createdBy": "ci",
    "createdByType": "Application",
    "lastModifiedAt": "2026-12-01T10:00:00Z",
    "lastModifiedBy": "ci",
    "lastModifiedByType": "Application",
}
_OPERATIONS = f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/{REGION}"


class MirroredKeys:
    """Key Vault as the target sees it (the adapter itself: test_keyvault.py): versioned ids,
    and ``resolve`` for what Azure ML's secret injection does with a reference."""

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}

    def put(self, name: str, value: str) -> str:
        versions = self.values.setdefault(name, [])
        if not versions or versions[-1] != value:
            versions.append(value)
        return f"{VAULT}/secrets/{name}/v{len(versions)}"

    def resolve(self, value: str) -> str:
        """A ``${{keyvault:<id>}}`` reference's secret; any other value as it is."""
        reference = r"\$\{\{keyvault:" + re.escape(VAULT) + r"/secrets/(.+)/v(\d+)\}\}"
        found = re.fullmatch(reference, value)
        return self.values[found[1]][int(found[2]) - 1] if found else value


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class FakeAmlEndpoints:
    """Online endpoints and their deployments as Azure ML keeps them (ARM JSON).

    Writes are accepted at once; their operation finishes on its first poll, as Succeeded,
    or as Failed for the deployments named in ``failing``. ``events`` records what changed,
    in order, as the service saw it. Like Azure ML, it refuses traffic for a deployment that
    is not (yet) provisioned. Scoring URIs point at ``router_base`` (the Kubernetes router's
    form, ``<base>/api/v1/endpoint/<name>/score``).
    """

    def __init__(self, transport: RecordingTransport, router_base: str = "") -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, dict[str, Any]]] = {}  # endpoint -> name -> JSON
        self.environments: dict[str, dict[str, Any]] = {}  # environment version id -> JSON
        self.failing: set[str] = set()
        self.events: list[tuple[Any, ...]] = []
        self.router_base = router_base or f"http://aks-prod.{REGION}.cloudapp.azure.com"
        self._operations: dict[str, dict[str, Any]] = {}
        one = r"/([^/?]+)\?"
        transport.route("GET", rf"/workspaces/{WS}\?", self._workspace)
        transport.route("PUT", rf"/workspaces/{WS}/environments/[^/]+/versions/[^/?]+\?", self._env)
        transport.route("GET", ENDPOINTS + one, self._get_endpoint)
        transport.route("PUT", ENDPOINTS + one, self._put_endpoint)
        transport.route("DELETE", ENDPOINTS + one, self._delete_endpoint)
        transport.route("POST", ENDPOINTS + r"/([^/?]+)/listKeys\?", self._keys)
        transport.route("GET", ENDPOINTS + r"/([^/?]+)/deployments\?", self._list)
        deployment = ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)\?"
        transport.route("GET", deployment, self._get_deployment)
        transport.route("PUT", deployment, self._put_deployment)
        transport.route("DELETE", deployment, self._delete_deployment)
        transport.route("GET", r"/mfeOperation(sStatus|Results)/", self._poll)

    # ------------------------------------------------------------------ views for tests
    def traffic(self, endpoint: str) -> dict[str, int]:
        return dict(self.endpoints[endpoint]["properties"]["traffic"])

    def names(self, endpoint: str) -> list[str]:
        return sorted(self.deployments.get(endpoint, {}))

    def live(self, endpoint: str) -> dict[str, Any] | None:
        """The deployment with all the traffic, as stored, or None."""
        stored = self.endpoints.get(endpoint)
        shares = (stored or {}).get("properties", {}).get("traffic") or {}
        live = [name for name, share in shares.items() if share]
        return self.deployments[endpoint].get(live[0]) if live else None

    def image(self, deployment: dict[str, Any]) -> str:
        """The image of a deployment (from its environment version)."""
        env = self.environments[deployment["properties"]["environmentId"]]
        return str(env["properties"]["image"])

    # ------------------------------------------------------------------ routes
    @staticmethod
    def _workspace(request: Recorded) -> dict[str, Any]:
        return {"id": ARM, "name": WS, "location": REGION, "properties": {}}

    def _env(self, request: Recorded) -> Reply:
        path = request.url.split("?")[0].split("management.azure.com")[-1]
        env = {"id": path, "name": path.rsplit("/", 1)[-1], **request.json()}
        env["properties"]["provisioningState"] = "Succeeded"
        self.environments[path] = env
        return Reply(201, env)

    def _get_endpoint(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)", request)[0]
        if name not in self.endpoints:
            return _error(404, "UserError", f"endpoint {name} not found")
        return Reply(200, self.endpoints[name])

    def _put_endpoint(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)", request)[0]
        body = request.json()
        props = body["properties"]
        traffic = {k: int(v) for k, v in (props.get("traffic") or {}).items()}
        for deployment, share in traffic.items():
            state = self.deployments.get(name, {}).get(deployment, {}).get("properties", {})
            if share and state.get("provisioningState") != "Succeeded":
                return _error(400, "BadArgument", f"traffic to {deployment}: not ready")
        base = f"{self.router_base}/api/v1/endpoint/{name}"
        props.update(
            traffic=traffic,
            provisioningState="Succeeded",
            scoringUri=f"{base}/score",
            swaggerUri=f"{base}/swagger.json",
        )
        system = {"type": "SystemAssigned", "principalId": "p-1", "tenantId": "t-1"}
        stored = {"id": f"{ARM}/onlineEndpoints/{name}", "name": name, **body}
        stored.update(
            identity=body.get("identity") or system,
            kind="K8S" if props.get("compute") else "Managed",
            type="Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            systemData=SYSTEM_DATA,
        )
        self.endpoints[name] = stored
        self.deployments.setdefault(name, {})
        self.events.append(("traffic", traffic, body.get("tags") or {}))
        return self._accepted(f"ep-{name}", "Succeeded", stored)

    def _delete_endpoint(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)", request)[0]
        if self.endpoints.pop(name, None) is None:
            return _error(404, "UserError", f"endpoint {name} not found")
        self.deployments.pop(name, None)
        self.events.append(("delete-endpoint", name))
        return self._deleting(f"ep-del-{name}")

    def _keys(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)/listKeys", request)[0]
        if name not in self.endpoints:
            return _error(404, "UserError", f"endpoint {name} not found")
        return Reply(200, {"primaryKey": KEY, "secondaryKey": SECONDARY})

    def _list(self, request: Recorded) -> Reply:
        name = _match(ENDPOINTS + r"/([^/?]+)/deployments", request)[0]
        return Reply(200, {"value": list(self.deployments.get(name, {}).values())})

    def _get_deployment(self, request: Recorded) -> Reply:
        name, deployment = _match(ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)", request)
        stored = self.deployments.get(name, {}).get(deployment)
        if stored is None:
            return _error(404, "UserError", f"deployment {deployment} not found")
        return Reply(200, stored)

    def _put_deployment(self, request: Recorded) -> Reply:
        name, deployment = _match(ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)", request)
        if name not in self.endpoints:
            return _error(404, "UserError", f"endpoint {name} not found")
        body = request.json()
        failed = deployment in self.failing
        stored = {
            "id": f"{ARM}/onlineEndpoints/{name}/deployments/{deployment}",
            "name": deployment,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            **body,
            "systemData": SYSTEM_DATA,
        }
        props = stored["properties"]
        props["provisioningState"] = "Failed" if failed else "Succeeded"
        # Azure ML answers with its defaults filled in.
        if props.get("endpointComputeType") == "Kubernetes":
            props.setdefault("containerResourceRequirements", INSTANCE_RESOURCES)
        props.setdefault("scaleSettings", {"scaleType": "Default"})
        self.deployments[name][deployment] = stored
        self.events.append(("deployment-failed" if failed else "deployment", deployment))
        pending = copy.deepcopy(stored)
        pending["properties"]["provisioningState"] = "Creating"
        error = "Deployment failed: the readiness probe never answered" if failed else ""
        status = "Failed" if failed else "Succeeded"
        return self._accepted(f"dep-{deployment}", status, pending, error)

    def _delete_deployment(self, request: Recorded) -> Reply:
        name, deployment = _match(ENDPOINTS + r"/([^/?]+)/deployments/([^/?]+)", request)
        if self.deployments.get(name, {}).pop(deployment, None) is None:
            return _error(404, "UserError", f"deployment {deployment} not found")
        self.events.append(("delete-deployment", deployment))
        return self._deleting(f"dep-del-{deployment}")

    # ------------------------------------------------------------------ operations
    def _accepted(self, op: str, status: str, body: Any, error: str = "") -> Reply:
        """201 + ``Azure-AsyncOperation``, as the specification's create-or-update."""
        op = f"{op}-{len(self._operations)}"
        result: dict[str, Any] = {
            "id": f"{_OPERATIONS}/mfeOperationsStatus/{op}",
            "name": op,
            "status": status,
            "startTime": "2026-12-01T10:00:00Z",
            "endTime": "2026-12-01T10:00:05Z",
        }
        if error:
            result["error"] = {"code": "DeploymentFailed", "message": error}
        self._operations[op] = result
        poll = f"https://management.azure.com{result['id']}?api-version=2023-04-01-preview"
        headers = {"Azure-AsyncOperation": poll, "Retry-After": "0"}
        return Reply(201, body, headers)

    def _deleting(self, op: str) -> Reply:
        """202 + ``Location``, as the specification's delete (``final-state-via: location``)."""
        op = f"{op}-{len(self._operations)}"
        self._operations[op] = {}
        where = f"https://management.azure.com{_OPERATIONS}/mfeOperationResults/{op}"
        headers = {"Location": f"{where}?api-version=2023-04-01-preview", "Retry-After": "0"}
        return Reply(202, None, headers)

    def _poll(self, request: Recorded) -> Reply:
        kind, op = _match(r"/mfeOperation(sStatus|Results)/([^/?]+)", request)
        return Reply(200, self._operations[op] if kind == "sStatus" else None)


def _match(pattern: str, request: Recorded) -> tuple[str, ...]:
    found = re.search(pattern, request.url)
    assert found, request.url
    return found.groups()
