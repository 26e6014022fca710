"""Scoring services as plain local processes: the lightest stand-in for ACI (QA) and AKS.

Each replica is ``python -m scoring`` run straight from the registry's artifact folder
(``ReleaseSpec.model_uri``, a ``file://`` URI), configured through ``SCORING_*`` variables
and bound to its own loopback port; HAProxy in front owns the stable URL. The API key is
passed as the path of the environment's key file (``SCORING_API_KEY_FILE``), never as a
value; so are the collected container's SAS URL and the Application Insights connection
string. Rolling replacement, state and keys are ``RollingTarget``'s.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from backends.collect_sas import Collection
from backends.local import daemons
from backends.local.envstate import HOST
from backends.local.jsonfile import write_text_atomic
from backends.local.rolling import RollingTarget
from core.interfaces import BackendError, ReleaseSpec


def model_dir(release: ReleaseSpec) -> Path:
    """The local folder behind ``release.model_uri`` (``file://`` only).

    Raises:
        BackendError: The URI is not a local ``file://`` URI of an existing folder.
    """
    parts = urlsplit(release.model_uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise BackendError(
            f"the process target runs models from local folders (file:// URIs), "
            f"not {release.model_uri!r}"
        )
    path = Path(url2pathname(parts.path))
    if not path.is_dir():
        raise BackendError(f"model folder {path} of {release.model_name} does not exist")
    return path


class ProcessTarget(RollingTarget):
    """``DeploymentTarget`` running the scoring service as local processes.

    Args:
        state_dir: Folder for state, keys, HAProxy files and logs.
        ports: Stable loopback port of each environment.
        python: Interpreter of the scoring service (default: this one).
        service_argv: Command of one replica (default ``[python, "-m", "scoring"]``); it
            reads its configuration from ``SCORING_*`` variables.
        haproxy: The HAProxy executable in front of the replicas.
        health_timeout: Seconds a new release has to answer ``GET /`` with 200.
        drain_timeout: Seconds to wait for in-flight requests before stopping old replicas.
        collection: Replicas collect scored rows (``RollingTarget``).
        scrape_dir: Where Prometheus' file_sd targets go (``RollingTarget``).
        appinsights_connection_string: Replicas export telemetry there (``RollingTarget``).
    """

    kind = "process"

    def __init__(
        self,
        state_dir: Path,
        ports: Mapping[str, int],
        python: str = sys.executable,
        *,
        service_argv: Sequence[str] | None = None,
        haproxy: str = "haproxy",
        health_timeout: float = 60.0,
        drain_timeout: float = 30.0,
        collection: Collection | None = None,
        scrape_dir: Path | None = None,
        appinsights_connection_string: str | None = None,
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
        self.service_argv = list(service_argv or [python, "-m", "scoring"])

    def _check_release(self, release: ReleaseSpec) -> None:
        model_dir(release)

    def _start_replica(self, environment: str, release: ReleaseSpec, port: int, key: str) -> Any:
        log = self.state_dir / environment / "logs" / f"replica-{port}.log"
        env = {
            "SCORING_MODEL_DIR": str(model_dir(release)),
            **release.model_env(),
            # The path of the 0600 key file, not the key: /proc/<pid>/environ shows no secret.
            "SCORING_API_KEY_FILE": str(self._files(environment).key.resolve()),
            "SCORING_HOST": HOST,
            "SCORING_PORT": str(port),
        }
        if self.collection is not None:  # the SAS as a 0600 file, like the key
            url_file = self._files(environment).collect_url
            write_text_atomic(url_file, self.collection.issue_url())
            env.update(self.collection.env(environment, str(url_file.resolve())))
        if self.appinsights_connection_string is not None:  # a 0600 file too
            secret = self._files(environment).appinsights
            write_text_atomic(secret, self.appinsights_connection_string)
            env["SCORING_APPINSIGHTS_CONNECTION_STRING_FILE"] = str(secret.resolve())
        return {**daemons.spawn(self.service_argv, env, log), "log": str(log)}

    def _replica_alive(self, handle: Any) -> bool:
        return daemons.alive(handle)

    def _stop_replica(self, handle: Any) -> None:
        daemons.stop(handle)

    def _replica_log(self, handle: Any) -> str:
        return daemons.log_tail(Path(handle["log"]))
