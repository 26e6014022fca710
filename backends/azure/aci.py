"""``DeploymentTarget`` on Azure Container Instances: the QA environment in Azure.

Each environment is one container group, ``<prefix>-<environment>``, running the scoring
image on port 5001. The group has a private IP only, in the provisioned QA subnet (delegated
to ``Microsoft.ContainerInstance/containerGroups``; ``deployments/azure/modules/qa-network.bicep``):
the service speaks plain HTTP, so its key must never travel over a public address. Whoever
smoke tests QA (the flow's worker) runs inside that virtual network. The release it runs,
and the one before it (for ``rollback``), are kept as tags on the group, so any process can
read them.

Secrets: none in the container's environment. The API key reaches the container as a file on
a secret volume (``SCORING_API_KEY_FILE``); Azure never returns secret volumes, so ``keys``
(Key Vault in practice) supplies it for ``deploy`` and ``current``; the collected container's
SAS URL and the Application Insights connection string, when set, are files there too. The
image is pulled as a user-assigned identity (AcrPull), so there is no registry password at
all. The PUT body carries these secrets base64-encoded in the volume: nothing here logs it,
and the SDK's HTTP logging must stay off.

ACI restarts a group to change it: a deploy has seconds of downtime. That is accepted for
QA; production runs on an Azure ML online endpoint with a traffic switch.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.core.polling import LROPoller
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import (
    Container,
    ContainerGroup,
    ContainerGroupIdentity,
    ContainerGroupSubnetId,
    ContainerHttpGet,
    ContainerPort,
    ContainerProbe,
    EnvironmentVariable,
    ImageRegistryCredential,
    IpAddress,
    Port,
    ResourceRequests,
    ResourceRequirements,
    UserAssignedIdentities,
    Volume,
    VolumeMount,
)

from backends.azure._release_tags import release_from_tags, release_tags
from backends.collect_sas import Collection
from core.interfaces import BackendError, Endpoint, ReleaseSpec

log = logging.getLogger(__name__)

PORT = 5001
SECRETS_MOUNT = "/mnt/secrets"  # the secret volume, read-only in the container
KEY_FILE = "api-key"
COLLECT_FILE = "collect-url"  # the collected container's SAS URL, when the group collects
APPINSIGHTS_FILE = "appinsights-connection-string"  # where telemetry goes, when it is on


class AciTarget:
    """Runs scoring images as Azure Container Instances.

    Args:
        client: An ACI management client for the subscription.
        resource_group: Where the container groups live.
        location: Azure region of the groups.
        keys: Returns the API key of an environment (e.g. from Key Vault).
        subnet_id: Resource id of the subnet the group gets its private IP in (delegated to
            ``Microsoft.ContainerInstance/containerGroups``); there is no public IP.
        name_prefix: Container group names are ``<name_prefix>-<environment>``.
        port: The scoring container's port (the image's ``SCORING_PORT``).
        registry_server: The image registry (``<name>.azurecr.io``); empty for public images.
        registry_identity: Resource id of the user-assigned identity the group pulls its
            image as (it holds AcrPull on the registry); the group runs as it too.
        cpu: Cores per group.
        memory_gb: Memory per group.
        timeout: Seconds to wait for a create, update or delete.
        collection: The group collects what it scores: a fresh SAS URL of the ``collected``
            container (a user-delegation SAS in practice) is a second file on the secret
            volume (``SCORING_COLLECT_URL_FILE``), issued at each deploy.
        appinsights_connection_string: The group exports traces and logs there: a file on
            the secret volume (``SCORING_APPINSIGHTS_CONNECTION_STRING_FILE``). None: off.
    """

    def __init__(
        self,
        client: ContainerInstanceManagementClient,
        resource_group: str,
        location: str,
        keys: Callable[[str], str],
        *,
        subnet_id: str,
        name_prefix: str = "diabetes-scoring",
        port: int = PORT,
        registry_server: str = "",
        registry_identity: str = "",
        cpu: float = 1.0,
        memory_gb: float = 1.5,
        timeout: float = 900.0,
        collection: Collection | None = None,
        appinsights_connection_string: str | None = None,
    ) -> None:
        if "/subnets/" not in subnet_id.lower():
            raise ValueError(f"subnet_id must be a subnet's resource id, not {subnet_id!r}")
        self._client = client
        self.resource_group = resource_group
        self.location = location
        self._keys = keys
        self.subnet_id = subnet_id
        self.name_prefix = name_prefix
        self.port = port
        self.registry_server = registry_server
        self.registry_identity = registry_identity
        self.cpu = cpu
        self.memory_gb = memory_gb
        self.timeout = timeout
        self.collection = collection
        self._appinsights = appinsights_connection_string or None

    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        """Create or update the environment's group to run ``release``; the release it
        replaces is remembered for ``rollback``."""
        if not release.image:
            raise ValueError("ACI runs images: the release has no image")
        existing = self._group(environment)
        replaced = release_from_tags(existing.tags or {}) if existing else None
        tags = release_tags(release)
        if replaced is not None and release_tags(replaced) != tags:
            tags |= release_tags(replaced, "previous.")
        elif existing is not None:  # a redeploy keeps what it would roll back to
            tags |= {k: v for k, v in (existing.tags or {}).items() if k.startswith("previous.")}
        group = self._group_spec(environment, release, tags)
        name = self._name(environment)
        log.info("deploying %s v%s to ACI %s", release.model_name, release.model_version, name)
        try:
            self._wait(
                self._client.container_groups.begin_create_or_update(
                    self.resource_group, name, group
                )
            )
        except AzureError as exc:
            # The exception text is the service's error, never the request body.
            raise BackendError(f"cannot deploy to ACI {name}: {exc}") from exc
        endpoint = self.current(environment)
        if endpoint is None:
            raise BackendError(f"ACI {name} is missing right after its deployment")
        return endpoint

    def current(self, environment: str) -> Endpoint | None:
        """What the environment serves, or None if it has no group."""
        group = self._group(environment)
        release = release_from_tags(group.tags or {}) if group else None
        if group is None or release is None:
            return None
        ip = group.ip_address.ip if group.ip_address else None
        return Endpoint(
            environment=environment,
            url=f"http://{ip}:{self.port}" if ip else "",
            key=self._keys(environment),
            model_name=release.model_name,
            model_version=release.model_version,
            image=release.image,
        )

    def current_release(self, environment: str) -> ReleaseSpec | None:
        group = self._group(environment)
        return release_from_tags(group.tags or {}) if group else None

    def previous(self, environment: str) -> ReleaseSpec | None:
        group = self._group(environment)
        return release_from_tags(group.tags or {}, "previous.") if group else None

    def health(self, environment: str) -> bool:
        """Whether the group is provisioned and its scoring container is running."""
        group = self._group(environment)
        if group is None or group.provisioning_state != "Succeeded":
            return False
        # instance_view is read-only (the SDK types it as always None).
        views: list[Any] = [c.instance_view for c in group.containers]
        states = [v.current_state.state for v in views if v is not None and v.current_state]
        return len(states) == len(group.containers) > 0 and set(states) == {"Running"}

    def rollback(self, environment: str) -> Endpoint:
        """Deploy the previous release again (it and the current one swap places)."""
        before = self.previous(environment)
        if before is None:
            raise BackendError(f"ACI {self._name(environment)} has no previous release")
        return self.deploy(environment, before)

    def teardown(self, environment: str) -> None:
        """Delete the environment's group; a no-op if there is none."""
        name = self._name(environment)
        try:
            self._wait(self._client.container_groups.begin_delete(self.resource_group, name))
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise BackendError(f"cannot delete ACI {name}: {exc}") from exc

    # ------------------------------------------------------------------ helpers
    def _wait(self, poller: LROPoller[Any]) -> None:
        # wait(), not result(timeout): past the timeout result() returns whatever the last
        # poll said, as if the operation had finished. wait() re-raises the operation's failure.
        poller.wait(timeout=self.timeout)
        if not poller.done():
            raise BackendError(f"ACI did not finish within {self.timeout:g} s")

    def _name(self, environment: str) -> str:
        return f"{self.name_prefix}-{environment}"

    def _group(self, environment: str) -> ContainerGroup | None:
        try:
            return self._client.container_groups.get(self.resource_group, self._name(environment))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise BackendError(f"cannot read ACI {self._name(environment)}: {exc}") from exc

    def _group_spec(
        self, environment: str, release: ReleaseSpec, tags: dict[str, str]
    ) -> ContainerGroup:
        env = [EnvironmentVariable(name=k, value=v) for k, v in release.model_env().items()]
        # The key is a file on a secret volume; the environment only says where it is.
        env.append(
            EnvironmentVariable(name="SCORING_API_KEY_FILE", value=f"{SECRETS_MOUNT}/{KEY_FILE}")
        )
        secrets = {KEY_FILE: _b64(self._keys(environment))}
        if self.collection is not None:
            secrets[COLLECT_FILE] = _b64(self.collection.issue_url())
            collect_env = self.collection.env(environment, f"{SECRETS_MOUNT}/{COLLECT_FILE}")
            env += [EnvironmentVariable(name=k, value=v) for k, v in collect_env.items()]
        if self._appinsights is not None:
            secrets[APPINSIGHTS_FILE] = _b64(self._appinsights)
            env.append(
                EnvironmentVariable(
                    name="SCORING_APPINSIGHTS_CONNECTION_STRING_FILE",
                    value=f"{SECRETS_MOUNT}/{APPINSIGHTS_FILE}",
                )
            )
        container = Container(
            name="scoring",
            image=release.image,
            resources=ResourceRequirements(
                requests=ResourceRequests(cpu=self.cpu, memory_in_gb=self.memory_gb)
            ),
            ports=[ContainerPort(port=self.port)],
            environment_variables=env,
            volume_mounts=[VolumeMount(name="secrets", mount_path=SECRETS_MOUNT, read_only=True)],
            liveness_probe=_probe("/healthz", self.port, 20),
            readiness_probe=_probe("/", self.port, 5),
        )
        credentials: list[ImageRegistryCredential] | None = None
        identity: ContainerGroupIdentity | None = None
        if self.registry_server and self.registry_identity:
            credentials = [
                ImageRegistryCredential(
                    server=self.registry_server, identity=self.registry_identity
                )
            ]
            identity = ContainerGroupIdentity(
                type="UserAssigned",
                user_assigned_identities={self.registry_identity: UserAssignedIdentities()},
            )
        return ContainerGroup(
            location=self.location,
            containers=[container],
            os_type="Linux",
            restart_policy="Always",
            # Private: reachable only inside the virtual network (no public IP, no DNS label).
            ip_address=IpAddress(type="Private", ports=[Port(protocol="TCP", port=self.port)]),
            subnet_ids=[ContainerGroupSubnetId(id=self.subnet_id)],
            volumes=[Volume(name="secrets", secret=secrets)],
            image_registry_credentials=credentials,
            identity=identity,
            tags=tags,
        )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _probe(path: str, port: int, delay: int) -> ContainerProbe:
    return ContainerProbe(
        http_get=ContainerHttpGet(path=path, port=port, scheme="http"),
        initial_delay_seconds=delay,
        period_seconds=10,
        failure_threshold=3,
    )
