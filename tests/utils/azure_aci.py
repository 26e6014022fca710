"""Azure Container Instances container groups behind a ``RecordingTransport``, as ARM keeps them.

Shapes follow the REST specification of the api-version azure-mgmt-containerinstance 10.1
sends (azure-rest-api-specs, ``Microsoft.ContainerInstance/stable/2023-05-01``,
``containerInstance.json``): a group is ``{id, name, type, location, tags, identity,
properties: {provisioningState, containers, imageRegistryCredentials, restartPolicy,
ipAddress: {ports, type, ip[, dnsNameLabel, fqdn]}, osType, volumes, subnetIds, instanceView:
{state}}}``. What the specification marks ``x-ms-secret`` (``secureValue``, a secret
volume's content, registry passwords) is never returned. A private group gets an address of
its subnet (``ip``) and has no FQDN; a public one gets ``ip`` and, with a DNS label, an FQDN.
A create or update answers ``201`` with ``Azure-AsyncOperation``; the operation finishes on
its first poll (``Retry-After`` 0 to keep the tests fast).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.utils.azure_http import SUB, Recorded, RecordingTransport, Reply

PROVIDER = "providers/Microsoft.ContainerInstance"
GROUPS = f"/subscriptions/{SUB}/resourceGroups/rg-release/{PROVIDER}/containerGroups"


class FakeAci:
    """Container groups of one resource group.

    Args:
        transport: Where the management client's requests go.
        private_ip: The address a group in a subnet gets (a test that serves QA for real
            passes 127.0.0.1).
    """

    def __init__(self, transport: RecordingTransport, private_ip: str = "10.20.1.4") -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}  # group -> the API key its secret volume carried
        self.running = True
        self.private_ip = private_ip
        transport.route("GET", GROUPS + r"/[^/?]+\?", self._get)
        transport.route("PUT", GROUPS + r"/[^/?]+\?", self._put)
        transport.route("DELETE", GROUPS + r"/[^/?]+\?", self._delete)
        transport.route("GET", r"/operations/aci-", self._poll)

    @staticmethod
    def _name(request: Recorded) -> str:
        return str(re.search(r"/containerGroups/([^/?]+)", request.url)[1])  # type: ignore[index]

    def _get(self, request: Recorded) -> Reply:
        group = self.groups.get(self._name(request))
        if group is None:
            message = f"The Resource '{self._name(request)}' was not found."
            return Reply(404, {"error": {"code": "ResourceNotFound", "message": message}})
        return Reply(200, group)

    def _put(self, request: Recorded) -> Reply:
        name = self._name(request)
        body = request.json()
        props = body["properties"]
        address = props.get("ipAddress") or {}
        if address.get("type") == "Private":
            assert props.get("subnetIds"), "a private group needs subnetIds"
            assert "dnsNameLabel" not in address, "a private group has no DNS label"
            address["ip"] = self.private_ip
        elif address:
            address["ip"] = "20.50.1.2"
            if "dnsNameLabel" in address:
                address["fqdn"] = f"{address['dnsNameLabel']}.westeurope.azurecontainer.io"
        props["provisioningState"] = "Succeeded"
        state = "Running" if self.running else "Waiting"
        props["instanceView"] = {"state": state}
        for container in props["containers"]:
            container["properties"]["instanceView"] = {
                "restartCount": 0,
                "currentState": {"state": state},
            }
            for var in container["properties"].get("environmentVariables", []):
                var.pop("secureValue", None)  # x-ms-secret: never returned
        for volume in props.get("volumes") or []:
            secret = volume.pop("secret", None)  # nor a secret volume's content
            if secret and "api-key" in secret:
                self.keys[name] = base64.b64decode(secret["api-key"]).decode()
        stored = {
            "id": f"{GROUPS}/{name}",
            "name": name,
            "type": "Microsoft.ContainerInstance/containerGroups",
            **body,
        }
        self.groups[name] = stored
        pending = {**stored, "properties": {**props, "provisioningState": "Pending"}}
        poll = f"https://management.azure.com/operations/aci-{name}?api-version=2023-05-01"
        return Reply(201, pending, {"Azure-AsyncOperation": poll, "Retry-After": "0"})

    def _delete(self, request: Recorded) -> Reply:
        if self.groups.pop(self._name(request), None) is None:
            return Reply(204, None)
        return Reply(200, None)

    @staticmethod
    def _poll(request: Recorded) -> Reply:
        return Reply(200, {"status": "Succeeded", "startTime": "2026-12-01T10:00:00Z"})
