"""Prometheus' file-based service discovery for the local environments.

Replicas come and go with every release, so Prometheus is not configured with their ports:
it reads ``file_sd_configs`` files from one folder and rereads them when they change. Each
environment writes two files there, replaced atomically on every release, rollback and
teardown (``RollingTarget``):

- ``scoring-<kind>-<env>.json``: its replicas (``GET /metrics`` on each replica's port);
- ``haproxy-<kind>-<env>.json``: its HAProxy's built-in exporter (``proxy.metrics_port``).

Both carry the labels ``environment`` and ``target`` (process or docker); the replicas' also
``model_name`` and ``model_version``. Prometheus' config (``mlops.prometheus``) has one job
per file prefix: ``scoring`` and ``haproxy``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from backends.local.envstate import HOST
from core.interfaces import ReleaseSpec

JOBS = ("scoring", "haproxy")


def target_file(scrape_dir: Path, job: str, kind: str, environment: str) -> Path:
    """The file_sd file of one job of one environment."""
    return scrape_dir / f"{job}-{kind}-{environment}.json"


def publish(
    scrape_dir: Path,
    kind: str,
    environment: str,
    replica_ports: Iterable[int],
    release: ReleaseSpec | None,
    proxy_metrics_port: int | None,
) -> None:
    """Write the environment's scrape targets (replicas and HAProxy), replacing the old ones.

    Args:
        scrape_dir: The folder Prometheus reads (created when missing).
        kind: The target's kind (``process``, ``docker``), so two targets never collide.
        environment: ``qa``, ``production``, ...
        replica_ports: Loopback ports of the replicas to scrape.
        release: What the replicas serve (labels), or None.
        proxy_metrics_port: The HAProxy exporter's port, or None when none runs.
    """
    labels = {"environment": environment, "target": kind}
    replicas: dict[str, Any] = {
        "targets": [f"{HOST}:{port}" for port in sorted(set(replica_ports))],
        "labels": dict(labels),
    }
    if release is not None:
        replicas["labels"].update(
            model_name=release.model_name, model_version=release.model_version
        )
    proxy = [f"{HOST}:{proxy_metrics_port}"] if proxy_metrics_port else []
    scrape_dir.mkdir(parents=True, exist_ok=True)
    _write(target_file(scrape_dir, "scoring", kind, environment), [replicas])
    _write(
        target_file(scrape_dir, "haproxy", kind, environment),
        [{"targets": proxy, "labels": labels}],
    )


def withdraw(scrape_dir: Path, kind: str, environment: str) -> None:
    """Remove the environment's scrape targets (it was torn down)."""
    for job in JOBS:
        target_file(scrape_dir, job, kind, environment).unlink(missing_ok=True)


def _write(path: Path, groups: list[dict[str, Any]]) -> None:
    # Atomic: Prometheus rereads on change and must never see half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(groups, fh, indent=1)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
