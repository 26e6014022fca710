"""``DeploymentTarget`` on AKS: the production environment in Azure, as Azure ML Kubernetes
online endpoints.

The AKS cluster is attached to the workspace as a Kubernetes compute. Each environment is one
endpoint, ``<prefix>-<environment>`` (key auth), and each release is one deployment on it,
named from the release (``deployment_name``): ``v<version>-<sha8>-<image6>``. A deployment
runs the scoring image on port 5001 with its routes declared in the inference config
(``GET /healthz`` liveness, ``GET /`` readiness: probed by Azure ML inside the cluster;
``POST /score``: the only route its router forwards), and autoscales on CPU use between the
``Autoscale`` bounds (``online_spec``). The model is baked into the image, so there is no
model asset.

A deploy creates the new deployment next to the live one and waits until Azure ML reports it
ready; only then does one endpoint update send it 100% of the traffic. Azure ML's router does
the switch while the old deployment still runs, so clients see no downtime. If the new
deployment fails, the traffic is never touched and production serves on. The replaced
deployment keeps running as the ``previous`` release (named in the endpoint tag
``previous``), so a rollback is a traffic switch back; older deployments are deleted.

Where things are recorded: the live release is the deployment with the traffic; each
deployment's tags hold its release (model name, version, sha256, image).

With ``kind="managed"`` the same happens on a managed online endpoint: Azure ML runs the
instances (``instance_type``, a fixed count), for users without a cluster.

Secrets: the container checks the endpoint's own keys (``SCORING_API_KEY`` and
``SCORING_SECONDARY_API_KEY``). They are mirrored into Key Vault at deploy time, and the
deployment's variables hold only Key Vault references (``${{keyvault:<versioned id>}}``) that
Azure ML's secret injection resolves when the container starts, as the endpoint's identity
(``identity``: Key Vault Secrets User). Reading the deployment shows references, never keys.
The collected container's SAS URL and the Application Insights connection string, when set,
go the same way.
A regenerated endpoint key reaches the container with the next deploy. Nothing here logs the
keys or puts them in exception messages, and the SDK's HTTP body logging must stay off.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Protocol

from backends.azure.client import call
from backends.azure.online_spec import (
    NAME,
    PORT,
    ROUTES,
    Autoscale,
    Kind,
    as_deployed,
    build_deployment,
    deployment_name,
    label,
    live,
    release_of,
    scale_settings,
    succeeded,
)
from backends.collect_sas import Collection
from core.interfaces import BackendError, Endpoint, NotFoundError, ReleaseSpec

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import EndpointAuthKeys, OnlineDeployment, OnlineEndpoint
    from azure.core.polling import LROPoller

log = logging.getLogger(__name__)


class SecretWriter(Protocol):
    """Where endpoint keys are mirrored (``backends.azure.keyvault.KeyVaultSecrets``)."""

    def put(self, name: str, value: str) -> str:
        """Store ``value`` as secret ``name``; return its versioned id."""
        ...


PREVIOUS_TAG = "previous"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
__all__ = ["PORT", "ROUTES", "AksOnlineTarget", "Autoscale", "deployment_name"]


class AksOnlineTarget:
    """Runs scoring images as Azure ML online endpoints: Kubernetes endpoints on an attached
    AKS cluster, or managed online endpoints.

    Args:
        ml_client: The workspace client (see ``backends.azure.client.workspace_client``).
        compute: Name of the AKS cluster's Kubernetes compute in the workspace (``kind``
            ``kubernetes``); ignored for a managed online endpoint.
        secrets: The Key Vault the endpoint keys are mirrored to (secret injection).
        identity: Resource id of the user-assigned identity the endpoint runs as; it reads
            the mirrored keys (Key Vault Secrets User).
        name_prefix: Endpoint names are ``<name_prefix>-<environment>``; they must be unique
            in the Azure region.
        min_replicas: Fewest instances a deployment runs (a release asking for fewer gets
            this many), so that a node or pod restart never takes production down.
        kind: ``kubernetes`` or ``managed``; default: ``kubernetes`` when ``compute`` is set.
        autoscale: Target-utilization autoscale of Kubernetes deployments; its minimum also
            raises the floor of instances. A managed deployment runs the floor, fixed.
        instance_type: A Kubernetes instance type defined on the compute (CPU and memory per
            instance; the compute's default when empty), or the VM size of a managed
            deployment (required then).
        timeout: Seconds to wait for each create, update or delete.
        collection: Deployments collect what they score: a fresh SAS of the ``collected``
            container goes to Key Vault at each deploy, the deployment gets its reference
            (``SCORING_COLLECT_URL``), as it does the keys.
        appinsights_connection_string: Deployments export traces and logs there: mirrored
            to Key Vault, a reference in ``SCORING_APPINSIGHTS_CONNECTION_STRING``. None: off.
    """

    def __init__(
        self,
        ml_client: MLClient,
        compute: str,
        secrets: SecretWriter,
        *,
        identity: str = "",
        name_prefix: str = "diabetes-scoring",
        min_replicas: int = 2,
        instance_type: str = "",
        kind: Kind | None = None,
        autoscale: Autoscale | None = None,
        timeout: float = 1800.0,
        collection: Collection | None = None,
        appinsights_connection_string: str | None = None,
    ) -> None:
        if min_replicas < 1:
            raise ValueError("min_replicas must be at least 1")
        self.kind: Kind = kind or ("kubernetes" if compute else "managed")
        if self.kind == "kubernetes" and not compute:
            raise ValueError("a Kubernetes online endpoint needs the workspace's compute")
        if self.kind == "managed" and not instance_type:
            raise ValueError("a managed online endpoint needs an instance_type")
        self._client = ml_client
        self.compute = compute if self.kind == "kubernetes" else ""
        self.autoscale = autoscale or Autoscale()
        self._secrets = secrets
        self.identity = identity
        self.name_prefix = name_prefix
        self.min_replicas = min_replicas
        self.instance_type = instance_type
        self.timeout = timeout
        self.collection = collection
        self._appinsights = appinsights_connection_string or None

    # ------------------------------------------------------------------ DeploymentTarget
    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        """Run ``release`` in its own deployment, then send it all the traffic; the deployment
        it replaces stays as the ``previous`` release. The release already live is left
        alone (or, asked for other replicas, scaled in place).

        Raises:
            ValueError: The release has no image or no valid sha256.
            BackendError: The deployment failed (the traffic stays where it was; a
                deployment created for it is deleted), or Azure ML refused a change.
        """
        if not release.image:
            raise ValueError("AKS runs images: the release has no image")
        if not _SHA256.match(release.model_sha256):
            raise ValueError("the release has no valid model sha256")
        name = self._name(environment)
        wanted = deployment_name(release)
        replicas = max(release.replicas, self.min_replicas, self.autoscale.min_instances)
        endpoint = self._endpoint(name) or self._create_endpoint(name)
        serving = live(endpoint)
        existing = self._deployment(name, wanted)
        if (
            wanted == serving
            and existing is not None
            and succeeded(existing.provisioning_state)
            and release_of(existing) == as_deployed(release, replicas)
            and self._scales_as_wanted(existing, replicas)
        ):
            log.info("AKS %s already serves %s as %s", name, label(release), wanted)
            return self._to_endpoint(environment, endpoint, existing)
        self._put_deployment(name, wanted, release, replicas, serving, created=existing is None)
        if wanted != serving:
            self._send_traffic(name, wanted, previous=serving)
            self._prune(name, keep={wanted, serving})
        return self._require_current(environment)

    def current(self, environment: str) -> Endpoint | None:
        """What the environment serves, or None if it has no endpoint or nothing is live."""
        endpoint, deployment = self._serving(environment)
        if endpoint is None or deployment is None or release_of(deployment) is None:
            return None
        return self._to_endpoint(environment, endpoint, deployment)

    def current_release(self, environment: str) -> ReleaseSpec | None:
        """The release of the deployment that has the traffic."""
        _, deployment = self._serving(environment)
        return release_of(deployment) if deployment else None

    def previous(self, environment: str) -> ReleaseSpec | None:
        """The release ``rollback`` would put back (its deployment still runs)."""
        name = self._name(environment)
        endpoint = self._endpoint(name)
        before = _previous_name(endpoint) if endpoint else None
        deployment = self._deployment(name, before) if before else None
        return release_of(deployment) if deployment else None

    def health(self, environment: str) -> bool:
        """Whether the endpoint and the deployment with the traffic are both provisioned."""
        endpoint, deployment = self._serving(environment)
        return (
            endpoint is not None
            and deployment is not None
            and succeeded(endpoint.provisioning_state)
            and succeeded(deployment.provisioning_state)
        )

    def rollback(self, environment: str) -> Endpoint:
        """Send all traffic back to the previous deployment; it and the current one swap.

        Raises:
            NotFoundError: There is no previous release.
            BackendError: The previous deployment is not healthy, or Azure ML refused the
                traffic change.
        """
        name = self._name(environment)
        endpoint = self._endpoint(name)
        before = _previous_name(endpoint) if endpoint else None
        deployment = self._deployment(name, before) if before else None
        if endpoint is None or before is None or deployment is None:
            raise NotFoundError(f"AKS endpoint {name} has no previous release")
        if not succeeded(deployment.provisioning_state):
            raise BackendError(
                f"cannot roll AKS endpoint {name} back: deployment {before} is "
                f"{deployment.provisioning_state}"
            )
        serving = live(endpoint)
        log.info("rolling AKS %s back from %s to %s", name, serving, before)
        self._send_traffic(name, before, previous=serving)
        return self._require_current(environment)

    def teardown(self, environment: str) -> None:
        """Delete the environment's endpoint with its deployments; a no-op if there is none."""
        name = self._name(environment)
        try:
            call(
                f"delete AKS endpoint {name}",
                lambda: self._wait(self._client.online_endpoints.begin_delete(name=name)),
            )
        except NotFoundError:
            return
        log.info("deleted AKS endpoint %s", name)

    # ------------------------------------------------------------------ steps
    def _create_endpoint(self, name: str) -> OnlineEndpoint:
        from azure.ai.ml.entities import (
            IdentityConfiguration,
            KubernetesOnlineEndpoint,
            ManagedIdentityConfiguration,
            ManagedOnlineEndpoint,
        )

        # The endpoint's identity reads the Key Vault references of its deployments.
        identity = (
            IdentityConfiguration(
                type="user_assigned",
                user_assigned_identities=[ManagedIdentityConfiguration(resource_id=self.identity)],
            )
            if self.identity
            else None
        )
        common: dict[str, Any] = {
            "name": name,
            "auth_mode": "key",
            "identity": identity,
            "description": "Scoring service (one deployment per release)",
        }
        endpoint: OnlineEndpoint = (
            KubernetesOnlineEndpoint(compute=self.compute, **common)
            if self.kind == "kubernetes"
            else ManagedOnlineEndpoint(**common)
        )
        log.info("creating endpoint %s on %s", name, self.compute or "managed compute")
        call(
            f"create AKS endpoint {name}",
            lambda: self._wait(self._client.online_endpoints.begin_create_or_update(endpoint)),
        )
        created = self._endpoint(name)
        if created is None:
            raise BackendError(f"AKS endpoint {name} is missing right after its creation")
        return created

    def _put_deployment(
        self,
        name: str,
        deployment: str,
        release: ReleaseSpec,
        replicas: int,
        serving: str | None,
        *,
        created: bool,
    ) -> None:
        from backends.azure.keyvault import injection

        keys = self._keys(name)
        # The keys go to Key Vault; the deployment holds references Azure ML resolves.
        references = {
            "SCORING_API_KEY": injection(
                self._secrets.put(f"{name}-primary-key", str(keys.primary_key))
            )
        }
        if keys.secondary_key:
            secondary = self._secrets.put(f"{name}-secondary-key", str(keys.secondary_key))
            references["SCORING_SECONDARY_API_KEY"] = injection(secondary)
        if self.collection is not None:
            # Online deployments take no secret files: the SAS goes the keys' way, a Key
            # Vault reference resolved into SCORING_COLLECT_URL when the container starts.
            sas = self._secrets.put(f"{name}-collect-url", self.collection.issue_url())
            references["SCORING_COLLECT_URL"] = injection(sas)
            references.update(self.collection.env(name.removeprefix(f"{self.name_prefix}-"), None))
        if self._appinsights is not None:
            telemetry = self._secrets.put(f"{name}-appinsights", self._appinsights)
            references["SCORING_APPINSIGHTS_CONNECTION_STRING"] = injection(telemetry)
        spec = build_deployment(
            self.kind,
            endpoint=name,
            name=deployment,
            release=release,
            replicas=replicas,
            environment_variables={**release.model_env(), **references},
            instance_type=self.instance_type,
            autoscale=self.autoscale,
        )
        log.info(
            "deploying %s to AKS %s as %s (%d replicas)",
            label(release),
            name,
            deployment,
            replicas,
        )
        try:
            call(
                f"deploy {deployment}",
                lambda: self._wait(self._client.online_deployments.begin_create_or_update(spec)),
            )
        except BackendError as exc:
            if created:  # a failed deployment still holds cluster resources
                self._delete_deployment(name, deployment)
            still = f"it still serves {serving}" if serving else "it serves nothing"
            raise BackendError(f"AKS endpoint {name}: {exc}; {still}") from exc

    def _send_traffic(self, name: str, deployment: str, *, previous: str | None) -> None:
        """Give ``deployment`` 100% of the traffic in one endpoint update and record what it
        replaces as ``previous``."""

        def update() -> None:
            endpoint = self._client.online_endpoints.get(name=name)
            endpoint.traffic = {deployment: 100}
            tags = {k: v for k, v in (endpoint.tags or {}).items() if k != PREVIOUS_TAG}
            endpoint.tags = tags | ({PREVIOUS_TAG: previous} if previous else {})
            self._wait(self._client.online_endpoints.begin_create_or_update(endpoint))

        call(f"send the traffic of AKS endpoint {name} to {deployment}", update)
        log.info("AKS %s: 100%% of the traffic goes to %s", name, deployment)

    def _prune(self, name: str, keep: set[str | None]) -> None:
        """Delete the deployments other than ``keep`` (best effort: the release is done)."""
        try:
            deployments = call(
                f"list the deployments of AKS endpoint {name}",
                lambda: list(self._client.online_deployments.list(endpoint_name=name)),
            )
        except BackendError as exc:
            log.warning("cannot clean up old deployments: %s", exc)
            return
        for deployment in deployments:
            if deployment.name not in keep:
                self._delete_deployment(name, str(deployment.name))

    def _delete_deployment(self, name: str, deployment: str) -> None:
        log.info("deleting deployment %s of AKS %s", deployment, name)
        try:
            call(
                f"delete deployment {deployment}",
                lambda: self._wait(
                    self._client.online_deployments.begin_delete(
                        name=deployment, endpoint_name=name
                    )
                ),
            )
        except NotFoundError:
            pass
        except BackendError as exc:
            log.warning("AKS %s: %s", name, exc)

    # ------------------------------------------------------------------ reads
    def _name(self, environment: str) -> str:
        name = f"{self.name_prefix}-{environment}"
        if not NAME.match(name):
            raise ValueError(f"{name!r} is not a valid Azure ML endpoint name")
        return name

    def _endpoint(self, name: str) -> OnlineEndpoint | None:
        try:
            return call(
                f"read AKS endpoint {name}", lambda: self._client.online_endpoints.get(name=name)
            )
        except NotFoundError:
            return None

    def _serving(self, environment: str) -> tuple[OnlineEndpoint | None, OnlineDeployment | None]:
        """The environment's endpoint and the deployment that has its traffic."""
        name = self._name(environment)
        endpoint = self._endpoint(name)
        serving = live(endpoint) if endpoint else None
        return endpoint, self._deployment(name, serving) if serving else None

    def _deployment(self, name: str, deployment: str) -> OnlineDeployment | None:
        try:
            return call(
                f"read deployment {deployment} of AKS endpoint {name}",
                lambda: self._client.online_deployments.get(name=deployment, endpoint_name=name),
            )
        except NotFoundError:
            return None

    def _keys(self, name: str) -> EndpointAuthKeys:
        from azure.ai.ml.entities import EndpointAuthKeys

        keys = call(
            f"read the keys of AKS endpoint {name}",
            lambda: self._client.online_endpoints.get_keys(name=name),
        )
        if not isinstance(keys, EndpointAuthKeys) or not keys.primary_key:
            raise BackendError(f"AKS endpoint {name} does not use key authentication")
        return keys

    def _to_endpoint(
        self, environment: str, endpoint: OnlineEndpoint, deployment: OnlineDeployment
    ) -> Endpoint:
        release = release_of(deployment)
        return Endpoint(
            environment=environment,
            # The project appends the route itself: the base is the scoring URI without it.
            url=str(endpoint.scoring_uri or "").removesuffix("/score"),
            key=str(self._keys(str(endpoint.name)).primary_key),
            model_name=release.model_name if release else "",
            model_version=release.model_version if release else "",
            image=release.image if release else "",
        )

    def _require_current(self, environment: str) -> Endpoint:
        endpoint = self.current(environment)
        if endpoint is None:
            raise BackendError(f"AKS endpoint {self._name(environment)} serves nothing")
        return endpoint

    def _scales_as_wanted(self, deployment: OnlineDeployment, replicas: int) -> bool:
        """Whether a live deployment already has the scale settings a deploy would send."""
        if self.kind == "managed":
            return True
        return bool(deployment.scale_settings == scale_settings(self.autoscale, replicas))

    def _wait(self, poller: LROPoller[Any]) -> None:
        # wait(), not result(): past the timeout, result() parses the operation's status
        # as the resource and fails with an AttributeError. wait() re-raises an operation's
        # failure, and returns quietly when the timeout passes.
        poller.wait(timeout=self.timeout)
        if not poller.done():
            raise BackendError(f"Azure ML did not finish within {self.timeout:g} s")


def _previous_name(endpoint: OnlineEndpoint) -> str | None:
    return str((endpoint.tags or {}).get(PREVIOUS_TAG) or "") or None
