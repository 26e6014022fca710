"""Zero-downtime releases behind HAProxy, shared by the process and Docker targets.

Each environment has a stable URL (``http://127.0.0.1:<port>``) owned by one HAProxy process
(``backends.local.haproxy``) and replicas on loopback ports of their own. A deploy:

1. starts the new release's replicas on fresh ports and waits until each answers
   ``GET /`` with 200 (a release that never does is stopped and the old one keeps serving);
2. adds them to HAProxy's idle backend through its runtime API and waits until HAProxy's
   own health checks see them UP;
3. switches HAProxy to them in one step (every request that starts later goes to the new
   release), waits until HAProxy reports no request left on the old backend, records the
   new state, deletes the old replicas from HAProxy and only then stops them.

HAProxy retries a request that could not connect or got no answer on another replica, so a
replica that dies (or is killed) under load costs clients nothing either.

Everything lives in files under ``state_dir/<environment>/``, so a CLI, a Prefect worker or
a test see the same environment: ``state.json`` (releases, replica handles, HAProxy's PID and
ports), ``api_key`` (0600, stable across releases, never logged), ``haproxy.cfg`` and the
runtime API socket, ``logs/``, and a ``lock`` file that serialises deploys.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from backends.collect_sas import Collection
from backends.local import haproxy, scrape_targets
from backends.local.envstate import HOST, EnvFiles, free_port, http_ok, read_release
from core.interfaces import BackendError, Endpoint, NotFoundError, ReleaseSpec

logger = logging.getLogger(__name__)

Replica = dict[str, Any]  # {"port": int, "handle": {...}} (the handle belongs to the subclass)


def _live(state: dict[str, Any]) -> list[Replica]:
    return list(state["current"]["replicas"]) if state["current"] else []


class ReleaseHealthError(BackendError):
    """The new release never became healthy; it was stopped and the old one kept serving."""


class RollingTarget(ABC):
    """A ``DeploymentTarget`` whose replicas subclasses start and stop (processes, containers).

    Args:
        state_dir: Folder for every environment's state, keys, HAProxy files and logs.
        ports: Stable loopback port of each environment, e.g. ``{"qa": 8600, ...}``.
        haproxy: The HAProxy executable (default: found on PATH or in /usr/sbin).
        health_timeout: Seconds a new release has to answer ``GET /`` with 200.
        drain_timeout: Seconds to wait for old replicas' in-flight requests before stopping.
        collection: Gives each replica a fresh SAS of the ``collected`` container (a file)
            and its ``SCORING_COLLECT_*`` settings; None: replicas collect nothing.
        scrape_dir: Where to write Prometheus' file_sd targets of each environment (its
            replicas and its HAProxy, ``backends.local.scrape_targets``); None: nowhere.
        appinsights_connection_string: Every replica exports traces and logs there
            (``scoring.telemetry``); a secret, so subclasses hand it over as a file
            (``SCORING_APPINSIGHTS_CONNECTION_STRING_FILE``), never as a variable. None: off.
    """

    kind: ClassVar[str]

    def __init__(
        self,
        state_dir: Path,
        ports: Mapping[str, int],
        *,
        haproxy: str = "haproxy",
        health_timeout: float = 60.0,
        drain_timeout: float = 30.0,
        collection: Collection | None = None,
        scrape_dir: Path | None = None,
        appinsights_connection_string: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.collection = collection  # replicas collect scored rows when set
        self.scrape_dir = scrape_dir
        self.appinsights_connection_string = appinsights_connection_string or None
        self.ports = dict(ports)
        self.haproxy = haproxy
        self.health_timeout = health_timeout
        self.drain_timeout = drain_timeout

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _check_release(self, release: ReleaseSpec) -> None:
        """Raise ``BackendError`` if this target cannot run ``release``."""

    @abstractmethod
    def _start_replica(self, environment: str, release: ReleaseSpec, port: int, key: str) -> Any:
        """Start one replica serving on 127.0.0.1:``port``; returns its JSON-able handle."""

    @abstractmethod
    def _replica_alive(self, handle: Any) -> bool: ...

    @abstractmethod
    def _stop_replica(self, handle: Any) -> None:
        """Stop the replica (gracefully first); a replica already gone is fine."""

    def _replica_log(self, handle: Any) -> str:
        """The replica's last log lines, for error messages."""
        return ""

    def replica_count(self, environment: str, release: ReleaseSpec) -> int:
        """QA runs one replica (like ACI); every other environment at least two (like AKS)."""
        return 1 if environment == "qa" else max(2, release.replicas)

    # ------------------------------------------------------------------ DeploymentTarget
    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        """Run ``release`` in ``environment`` behind its stable URL, replacing the current one
        without failing a request; the replaced release becomes ``previous``.

        Raises:
            ReleaseHealthError: The new release did not become healthy (the old one serves on).
            BackendError: The release cannot run here, or HAProxy cannot be started.
        """
        self._check_release(release)
        binary = haproxy.find_binary(self.haproxy)
        files = self._files(environment)
        with files.locked():
            state = self._load(files)
            key = files.ensure_key()
            old = _live(state)
            api = haproxy.ensure(files, state, binary)
            serving = self._recover(api, old)
            self._retire(files, state, list(state["retiring"]), drain=True)
            new = self._start_healthy(files, state, release, key)
            idle = next(b for b in haproxy.BACKENDS if b != serving)
            try:
                for replica in new:
                    api.add(idle, HOST, replica["port"])
                api.wait_up([r["port"] for r in new], self.health_timeout)
                api.switch(idle)
            except BaseException:
                with contextlib.suppress(BackendError):
                    api.switch(serving)
                self._retire(files, state, new, drain=True)
                raise
            self._publish(files, state, new + old, release)  # old ones still finish requests
            # Requests that chose the old backend before the switch finish there.
            api.wait_idle(serving, self.drain_timeout)
            if state["current"] and read_release(state["current"]["release"]) != release:
                state["previous"] = state["current"]["release"]
            state["current"] = {
                "release": dataclasses.asdict(release),
                "replicas": new,
                "since": datetime.now(UTC).isoformat(),
            }
            state["retiring"] = [r for r in state["retiring"] if r not in new]
            self._retire(files, state, old, drain=True)
            self._publish(files, state, new, release)
            logger.info(
                "%s now serves %s %s on %s (%d replicas)",
                environment, release.model_name, release.model_version, files.url, len(new),
            )  # fmt: skip
            return self._endpoint(files, state)

    def _recover(self, api: haproxy.Runtime, replicas: list[Replica]) -> str:
        """Make HAProxy route to exactly the recorded ``replicas`` (a fresh HAProxy has none;
        a deploy that crashed may have left others in, or switched without recording it);
        returns the backend that serves them."""
        ports = [r["port"] for r in replicas]
        servers = api.servers()
        homes = {servers[p].backend for p in ports if p in servers}
        serving = homes.pop() if len(homes) == 1 else api.active()
        for port in ports:  # not waited for: a dead one must not block its replacement
            api.add(serving, HOST, port)
        if api.active() != serving:
            api.switch(serving)
        api.prune(ports, self.drain_timeout)
        return serving

    def rollback(self, environment: str) -> Endpoint:
        """Redeploy the previous release (zero downtime); it swaps places with the current one.

        Raises:
            NotFoundError: There is no previous release.
        """
        previous = self.previous(environment)
        if previous is None:
            raise NotFoundError(f"{environment}: no previous release to roll back to")
        logger.info("%s: rolling back to %s", environment, previous.model_version)
        return self.deploy(environment, previous)

    def current(self, environment: str) -> Endpoint | None:
        files = self._files(environment)
        state = self._load(files)
        return self._endpoint(files, state) if state["current"] else None

    def current_release(self, environment: str) -> ReleaseSpec | None:
        current = self._load(self._files(environment))["current"]
        return read_release(current["release"]) if current else None

    def previous(self, environment: str) -> ReleaseSpec | None:
        previous = self._load(self._files(environment))["previous"]
        return read_release(previous) if previous else None

    def health(self, environment: str) -> bool:
        """Whether the stable URL answers ``GET /`` with 200 (as a client would see it)."""
        files = self._files(environment)
        return self._load(files)["current"] is not None and http_ok(files.url + "/")

    def teardown(self, environment: str) -> None:
        """Stop HAProxy and every replica of ``environment``; forget its state and key.

        Raises:
            BackendError: Some replicas could not be stopped (e.g. the Docker engine is
                gone); they stay recorded, so a later teardown tries them again.
        """
        files = self._files(environment)
        with files.locked():
            state = self._load(files)
            haproxy.stop(files, state)
            failed = []
            for replica in state["retiring"] + _live(state):
                try:
                    self._stop_replica(replica["handle"])
                except Exception as exc:  # stop all that can be stopped, then report
                    logger.error("%s: cannot stop replica %s: %s", environment, replica, exc)
                    failed.append(replica)
            if failed:
                state.update(current=None, retiring=failed)
                files.save(state)
                raise BackendError(f"{environment}: {len(failed)} replica(s) could not be stopped")
            files.forget()
            if self.scrape_dir is not None:
                scrape_targets.withdraw(self.scrape_dir, self.kind, environment)
            logger.info("%s torn down", environment)

    # ------------------------------------------------------------------ steps
    def _start_healthy(
        self, files: EnvFiles, state: dict[str, Any], release: ReleaseSpec, key: str
    ) -> list[Replica]:
        used = {r["port"] for r in state["retiring"] + _live(state)} | set(self.ports.values())
        new: list[Replica] = []
        try:
            for _ in range(self.replica_count(files.env, release)):
                port = free_port(used)
                used.add(port)
                handle = self._start_replica(files.env, release, port, key)
                new.append({"port": port, "handle": handle})
                state["retiring"].append(new[-1])  # not serving yet: stop it if we crash
                files.save(state)
            self._wait_healthy(files, new)
        except BaseException as exc:
            self._retire(files, state, new)
            if isinstance(exc, BackendError):
                serving = state["current"]["release"]["model_version"] if state["current"] else "-"
                raise ReleaseHealthError(
                    f"{files.env}: release {release.model_name} {release.model_version} was "
                    f"not switched in ({exc}); still serving version {serving}"
                ) from exc
            raise
        return new

    def _wait_healthy(self, files: EnvFiles, replicas: list[Replica]) -> None:
        deadline = time.monotonic() + self.health_timeout
        pending = list(replicas)
        while pending:
            for replica in list(pending):
                if not self._replica_alive(replica["handle"]):
                    tail = self._replica_log(replica["handle"])
                    raise BackendError(
                        f"replica on port {replica['port']} exited; its last log lines:\n{tail}"
                    )
                if http_ok(files.replica_url(replica["port"]) + "/"):
                    pending.remove(replica)
            if pending and time.monotonic() > deadline:
                raise BackendError(f"GET / did not answer 200 within {self.health_timeout:.0f} s")
            if pending:
                time.sleep(0.1)

    def _retire(
        self, files: EnvFiles, state: dict[str, Any], replicas: list[Replica], drain: bool = False
    ) -> None:
        """Record ``replicas`` as retiring; if they may have served, wait until HAProxy has
        nothing in flight on them and delete them from it; then stop them."""
        state["retiring"] += [r for r in replicas if r not in state["retiring"]]
        files.save(state)
        api = haproxy.runtime(files) if drain and state["proxy"] else None
        for replica in replicas:
            if api is not None:
                api.drain(replica["port"])
                api.remove(replica["port"], self.drain_timeout)
            self._stop_replica(replica["handle"])
            state["retiring"].remove(replica)
            files.save(state)

    def _publish(
        self, files: EnvFiles, state: dict[str, Any], replicas: list[Replica], release: ReleaseSpec
    ) -> None:
        """Tell Prometheus which replicas (and which HAProxy exporter) to scrape now."""
        if self.scrape_dir is None:
            return
        proxy = state["proxy"] or {}
        scrape_targets.publish(
            self.scrape_dir,
            self.kind,
            files.env,
            [r["port"] for r in replicas],
            release,
            proxy.get("metrics_port"),
        )

    # ------------------------------------------------------------------ state
    def _files(self, environment: str) -> EnvFiles:
        if environment not in self.ports:
            raise BackendError(f"no port configured for environment {environment!r}")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", environment):
            raise BackendError(f"bad environment name {environment!r}")
        return EnvFiles(self.state_dir / environment, environment, self.ports[environment])

    def _load(self, files: EnvFiles) -> dict[str, Any]:
        state = files.load()
        if state.setdefault("kind", self.kind) != self.kind:
            raise BackendError(f"{files.dir} belongs to a {state['kind']} target, not {self.kind}")
        return state

    def _endpoint(self, files: EnvFiles, state: dict[str, Any]) -> Endpoint:
        release = read_release(state["current"]["release"])
        since = state["current"].get("since")
        return Endpoint(
            environment=files.env,
            url=files.url,
            key=files.ensure_key(),
            model_name=release.model_name,
            model_version=release.model_version,
            image=release.image,
            since=datetime.fromisoformat(since) if since else None,
        )
