"""The local Prometheus (the Debian package): its config, its process and its HTTP API.

Started and stopped by PID with the local stack, like Azurite (``ManagedProcess``). Its
config is rewritten at each start under ``<state>/prometheus/`` (data in ``data/``); its scrape
targets are not in it: the environments write them as ``file_sd`` files into
``targets/`` on every release, rollback and teardown (``backends.local.scrape_targets``), and
Prometheus rereads them when they change. Jobs: ``scoring`` (each replica's ``/metrics``),
``haproxy`` (each environment's proxy exporter) and ``prometheus`` (itself).
"""

from __future__ import annotations

import json
import math
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from backends.local.managed import ManagedProcess
from core.interfaces import BackendError

SCRAPE_INTERVAL = "5s"  # local traffic is short-lived: a minute's rate needs a few samples
RETENTION = "7d"

CONFIG = """\
# Rendered by backends.local.prometheus at each start: do not edit.
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: scoring
    file_sd_configs:
      - files: ['{targets}/scoring-*.json']
        refresh_interval: {interval}
  - job_name: haproxy
    file_sd_configs:
      - files: ['{targets}/haproxy-*.json']
        refresh_interval: {interval}
  - job_name: prometheus
    static_configs:
      - targets: ['{host}:{port}']
"""


def find_binary(name: str = "prometheus") -> str:
    """The Prometheus executable (``make setup`` installs the Debian package)."""
    return shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin") or name


class PrometheusService(ManagedProcess):
    """One Prometheus on ``host:port`` with its files under ``home``.

    Args:
        home: Folder of ``prometheus.yml``, ``data/`` and the file_sd ``targets/``.
        run_dir: Folder of the PID file and log.
        port: Port of its UI and API.
        host: Interface to bind (loopback).
        binary: The executable (default: found on PATH).
        targets_dir: The file_sd folder (default ``home/targets``).
    """

    def __init__(
        self,
        home: Path,
        run_dir: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        binary: str | None = None,
        targets_dir: Path | None = None,
    ) -> None:
        self.home = home
        self.targets_dir = targets_dir or home / "targets"
        super().__init__(
            "prometheus",
            [
                binary or find_binary(),
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address={host}:{port}",
            ],
            run_dir,
            host=host,
            port=port,
            ready=lambda: PrometheusApi(self.url).ready(),
            port_setting="MLOPS_PROMETHEUS_PORT",
            hint="run `make setup` (it installs the prometheus package)",
        )

    @property
    def url(self) -> str:
        """Its UI; the HTTP API is under ``/api/v1``."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """Write the config (the targets folder may have moved), then the command line."""
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "prometheus.yml").write_text(
            CONFIG.format(
                interval=SCRAPE_INTERVAL,
                targets=self.targets_dir.resolve(),
                host=self.host,
                port=self.port,
            )
        )
        return super().command()


class PrometheusApi:
    """The few calls of Prometheus' HTTP API the project makes.

    Args:
        url: Prometheus' base URL (``http://127.0.0.1:9090``).
        timeout: Seconds per call.
    """

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # Loopback: never through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def ready(self) -> bool:
        """Whether it answers ``/-/ready`` with 200."""
        try:
            with self._opener.open(f"{self.url}/-/ready", timeout=self.timeout) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, object]]:
        """The instant vector of a PromQL expression: ``[{"metric": {...}, "value": [t, "v"]}]``.

        Raises:
            BackendError: Prometheus cannot be reached or refuses the query.
        """
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with self._opener.open(address, timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise BackendError(f"Prometheus refused {expr!r}: {exc.read()[:300]!r}") from None
        except (OSError, ValueError) as exc:
            raise BackendError(f"Prometheus at {self.url} cannot be queried: {exc}") from None
        if body.get("status") != "success":
            raise BackendError(f"Prometheus refused {expr!r}: {body.get('error')}")
        result = body["data"]["result"]
        return list(result) if isinstance(result, list) else []

    def scalar(self, expr: str) -> float | None:
        """The single value of ``expr`` (e.g. a ``sum(...)``), or None when it has none."""
        result = self.query(expr)
        if not result:
            return None
        value = float(result[0]["value"][1])  # type: ignore[index]
        return None if math.isnan(value) else value

    def targets(self) -> list[dict[str, object]]:
        """The active scrape targets (labels, health, last error)."""
        try:
            with self._opener.open(f"{self.url}/api/v1/targets", timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError) as exc:
            raise BackendError(f"Prometheus at {self.url} cannot be queried: {exc}") from None
        return list(body["data"]["activeTargets"])
