"""Scoring services as containers on a local Docker engine: the stand-in for ACI and AKS.

Each replica is one container of the release's image (model baked in at ``/model``) on the
host network (the engine here has no bridge), listening on 127.0.0.1 at the port given in
``SCORING_PORT``; HAProxy in front runs as a host process and owns the stable URL.
Containers are labelled with the stack (this state folder), environment, model and version,
and never restarted by the engine: the deployer decides what runs. The API key reaches them
as a file, bind-mounted read-only (``SCORING_API_KEY_FILE``): an environment variable would
show in ``docker inspect``. So do the SAS URL of the ``collected`` container when
replicas collect (``COLLECT_PATH``) and the Application Insights connection string when
telemetry is on (``APPINSIGHTS_PATH``). Rolling replacement, state and keys are ``RollingTarget``'s.

CPU weight: an engine on cgroup v1 with the ``cgroupfs`` driver puts every container in one
``docker`` cgroup, whose CPU weight (``cpu.shares`` 1024) is that of ONE host process, so at
saturation all replicas together got the CPU of one process against the HAProxy, the load
and anything else running. On such an engine each replica gets a top-level cgroup of its
own (``cgroup_parent="/"``): the weight of one process each, like a replica run on the host.
The ``systemd`` driver already gives each container a scope of its own; cgroup v2 with
``cgroupfs`` has the same shared group but is left as the engine sets it (not measured).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from docker.errors import DockerException, NotFound
from docker.types import Mount

from backends.collect_sas import Collection
from backends.local.envstate import HOST
from backends.local.jsonfile import write_text_atomic
from backends.local.rolling import RollingTarget
from core.interfaces import BackendError, ReleaseSpec

LABEL_PREFIX = "mlops."
SECRET_PATH = "/run/secrets/scoring_api_key"  # where containers find the key
COLLECT_PATH = "/run/secrets/collect_url"  # and the collected container's SAS URL
APPINSIGHTS_PATH = "/run/secrets/appinsights_connection_string"  # and the telemetry's
CONTAINER_UID = 10001  # the scoring image's user (scoring/Dockerfile)
OWN_CGROUP = "/"  # cgroup_parent giving each container a top-level cgroup (cgroupfs, v1)


def replica_cgroup_parent(info: Mapping[str, Any]) -> str | None:
    """The ``cgroup_parent`` of a replica on an engine whose ``docker info`` is ``info``:
    a top-level cgroup of its own on cgroup v1 with the ``cgroupfs`` driver (where the
    engine's default shares one CPU weight among all containers), else the engine's default
    (``None``)."""
    v1 = str(info.get("CgroupVersion", "1")) == "1"  # engines before 20.10 report no version
    return OWN_CGROUP if v1 and info.get("CgroupDriver") == "cgroupfs" else None


class DockerTarget(RollingTarget):
    """``DeploymentTarget`` running the scoring image as containers.

    Args:
        docker_client_factory: Makes a ``docker.DockerClient`` (called once, on first use).
        state_dir: Folder for state, keys, HAProxy files and logs.
        ports: Stable loopback port of each environment.
        haproxy: The HAProxy executable in front of the replicas.
        health_timeout: Seconds a new release has to answer ``GET /`` with 200.
        drain_timeout: Seconds to wait for in-flight requests before stopping old replicas.
        scrape_dir: Where Prometheus' file_sd targets go (``RollingTarget``).
        appinsights_connection_string: Replicas export telemetry there (``RollingTarget``);
            a bind-mounted file. The image needs the exporter (``DockerImageBuilder``).
        stop_timeout: Seconds a container has to exit after SIGTERM before SIGKILL.
        collection: Replicas collect scored rows; their SAS URL is a bind-mounted file.
    """

    kind = "docker"

    def __init__(
        self,
        docker_client_factory: Callable[[], Any],
        state_dir: Path,
        ports: Mapping[str, int],
        *,
        haproxy: str = "haproxy",
        health_timeout: float = 120.0,
        drain_timeout: float = 30.0,
        scrape_dir: Path | None = None,
        appinsights_connection_string: str | None = None,
        stop_timeout: int = 10,
        collection: Collection | None = None,
    ) -> None:
        super().__init__(
            state_dir,
            ports,
            haproxy=haproxy,
            health_timeout=health_timeout,
            drain_timeout=drain_timeout,
            collection=collection,
            scrape_dir=scrape_dir,
            appinsights_connection_string=appinsights_connection_string,
        )
        self._factory = docker_client_factory
        self._client: Any = None
        self.stop_timeout = stop_timeout
        # Tells apart the containers of two stacks (state folders) on one engine.
        self.stack = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:12]

    @property
    def client(self) -> Any:
        """The Docker client, made on first use."""
        if self._client is None:
            self._client = self._factory()
        return self._client

    @functools.cached_property
    def cgroup_parent(self) -> str | None:
        """The replicas' ``cgroup_parent`` on this engine (asked once): see
        ``replica_cgroup_parent``."""
        try:
            return replica_cgroup_parent(self.client.info())
        except DockerException as exc:
            raise BackendError(f"cannot ask the Docker engine its cgroup setup: {exc}") from exc

    def _check_release(self, release: ReleaseSpec) -> None:
        if not release.image:
            raise BackendError(
                f"the Docker target runs images: {release.model_name} {release.model_version} "
                "has no ReleaseSpec.image"
            )

    def run_options(
        self, environment: str, release: ReleaseSpec, port: int, key: str
    ) -> dict[str, Any]:
        """The ``containers.run`` arguments of one replica (the key file is written here)."""
        labels = {
            f"{LABEL_PREFIX}stack": self.stack,
            f"{LABEL_PREFIX}environment": environment,
            f"{LABEL_PREFIX}model": release.model_name,
            f"{LABEL_PREFIX}version": release.model_version,
            f"{LABEL_PREFIX}port": str(port),
        }
        env = {
            "SCORING_HOST": HOST,  # host network: bind loopback only, never every interface
            "SCORING_PORT": str(port),
            "SCORING_API_KEY_FILE": SECRET_PATH,
            **release.model_env(),
        }
        mounts = [Mount(SECRET_PATH, str(self._key_copy(environment, key)), "bind", read_only=True)]
        if self.collection is not None:  # Azurite is on 127.0.0.1 of the shared host network
            url_file = self._key_path(environment).with_name("collect_url")
            self._secret_copy(url_file, self.collection.issue_url())
            mounts.append(Mount(COLLECT_PATH, str(url_file), "bind", read_only=True))
            env.update(self.collection.env(environment, COLLECT_PATH))
        if self.appinsights_connection_string is not None:  # the ingestion is on the host too
            secret = self._key_path(environment).with_name("appinsights_connection_string")
            self._secret_copy(secret, self.appinsights_connection_string)
            mounts.append(Mount(APPINSIGHTS_PATH, str(secret), "bind", read_only=True))
            env["SCORING_APPINSIGHTS_CONNECTION_STRING_FILE"] = APPINSIGHTS_PATH
        options = {
            "image": release.image,
            "detach": True,
            "network_mode": "host",
            "environment": env,
            "mounts": mounts,
            "labels": labels,
            "restart_policy": {"Name": "no"},
        }
        if self.cgroup_parent is not None:
            options["cgroup_parent"] = self.cgroup_parent
        return options

    def _start_replica(self, environment: str, release: ReleaseSpec, port: int, key: str) -> Any:
        options = self.run_options(environment, release, port, key)
        try:
            container = self.client.containers.run(**options)
        except DockerException as exc:
            raise BackendError(f"cannot start {release.image}: {exc}") from exc
        return {"id": container.id}

    def _key_path(self, environment: str) -> Path:
        return (self._files(environment).secrets / "api_key").resolve()

    def _key_copy(self, environment: str, key: str) -> Path:
        return self._secret_copy(self._key_path(environment), key)

    def _secret_copy(self, path: Path, text: str) -> Path:
        """``text`` in a file the container's user can read, written atomically.

        As root, the file belongs to the container's uid with mode 0400. Otherwise it cannot
        be given away: it is world-readable (0444) inside a 0700 folder, which no other host
        user can enter, while the container reaches the bind-mounted file itself.
        """
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() == 0:
            write_text_atomic(path, text, 0o400, owner=CONTAINER_UID)
        else:
            write_text_atomic(path, text, 0o444)
        return path

    def _container(self, handle: Any) -> Any:
        try:
            return self.client.containers.get(handle["id"])
        except NotFound:
            return None

    def _replica_alive(self, handle: Any) -> bool:
        container = self._container(handle)
        return container is not None and container.status in ("created", "running")

    def _stop_replica(self, handle: Any) -> None:
        container = self._container(handle)
        if container is None:
            return
        try:
            if container.status == "running":
                container.stop(timeout=self.stop_timeout)
            container.remove(force=True)
        except NotFound:
            pass  # removed meanwhile: what we wanted

    def _replica_log(self, handle: Any) -> str:
        container = self._container(handle)
        if container is None:
            return "(container gone)"
        return bytes(container.logs(tail=20)).decode(errors="replace")

    def containers(self, environment: str | None = None) -> list[Any]:
        """This stack's containers (all states), optionally of one environment only."""
        labels = [f"{LABEL_PREFIX}stack={self.stack}"]
        if environment:
            labels.append(f"{LABEL_PREFIX}environment={environment}")
        return list(self.client.containers.list(all=True, filters={"label": labels}))

    def teardown(self, environment: str) -> None:
        """Stop everything of ``environment``, including containers the state lost track of
        (a deployer killed between starting a container and recording it)."""
        super().teardown(environment)
        self._key_path(environment).unlink(missing_ok=True)  # the key is forgotten with the rest
        try:
            for container in self.containers(environment):
                try:
                    container.remove(force=True)
                except NotFound:
                    pass
        except DockerException as exc:
            raise BackendError(f"{environment}: cannot remove stray containers: {exc}") from exc
