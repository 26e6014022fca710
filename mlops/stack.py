"""The local stack: which services run on this machine for the local profile, and how."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from backends.local.azurite import AzuriteService
from backends.local.prometheus import PrometheusService
from core.deploy import WORK_POOL, prefect_env, server_env
from core.interfaces import DeploymentTarget
from core.settings import Settings
from mlops.docs_server import DEFAULT_ASSETS
from mlops.services import ManagedProcess, http_ok


def prefect_server(settings: Settings) -> ManagedProcess:
    prefect = Path(sys.executable).with_name("prefect")
    return ManagedProcess(
        "prefect-server",
        [
            str(prefect),
            "server",
            "start",
            "--host",
            settings.prefect_host,
            "--port",
            str(settings.prefect_port),
        ],
        settings.run_path,
        host=settings.prefect_host,
        port=settings.prefect_port,
        ready=lambda: http_ok(f"{settings.local_prefect_api_url}/health"),
        env=server_env(settings),
        port_setting="MLOPS_PREFECT_PORT",
        hint="run `make setup`",
    )


def azurite(settings: Settings) -> AzuriteService:
    """Azurite's blob service, persisted under the state folder."""
    return AzuriteService(
        settings.azurite_port,
        settings.state_path / "azurite",
        settings.run_path / "azurite.log",
        host=settings.azurite_host,
    )


def notify_receiver(settings: Settings) -> ManagedProcess:
    """The local notification receiver the automations' Webhook block calls."""
    return ManagedProcess(
        "notify",
        [
            sys.executable,
            "-m",
            "mlops.notify",
            "--port",
            str(settings.notify_port),
            "--file",
            str(settings.notifications_path),
        ],
        settings.run_path,
        host="127.0.0.1",
        port=settings.notify_port,
        ready=lambda: http_ok(f"http://127.0.0.1:{settings.notify_port}/health"),
        port_setting="MLOPS_NOTIFY_PORT",
    )


def prefect_worker(settings: Settings) -> ManagedProcess:
    """A process worker on the project's work pool: runs the deployed flows.

    Its flow runs read their settings from the environment it passes on (``to_env``).
    """
    prefect = Path(sys.executable).with_name("prefect")
    return ManagedProcess(
        "prefect-worker",
        [
            str(prefect),
            "worker",
            "start",
            "--pool",
            WORK_POOL,
            "--type",
            "process",
            "--with-healthcheck",
        ],
        settings.run_path,
        host="127.0.0.1",
        port=settings.worker_port,
        ready=lambda: http_ok(f"http://127.0.0.1:{settings.worker_port}/health"),
        env={
            **prefect_env(settings),
            **settings.to_env(),
            # A run a trigger created waits up to this long for pickup (Prefect's default is
            # 10 s), half of it on average: twice on the way from landing to production. Two
            # small queries a second are nothing to the local server.
            "PREFECT_WORKER_QUERY_SECONDS": "0.5",
            "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
            "PREFECT_WORKER_WEBSERVER_PORT": str(settings.worker_port),
        },
        port_setting="MLOPS_WORKER_PORT",
    )


def docs_server(settings: Settings) -> ManagedProcess:
    """Serves the Data Docs folder on loopback, so the links in run artifacts open in a browser,
    styled offline: their CDN assets come from ``.tools/docs-assets`` (``mlops.docs_server``).
    (In Azure the same folder would go to the storage account's static website.)"""
    settings.data_docs_path.mkdir(parents=True, exist_ok=True)
    return ManagedProcess(
        "data-docs",
        [
            sys.executable,
            "-m",
            "mlops.docs_server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(settings.docs_port),
            "--directory",
            str(settings.data_docs_path),
            "--assets",
            str(DEFAULT_ASSETS),
        ],
        settings.run_path,
        host="127.0.0.1",
        port=settings.docs_port,
        port_setting="MLOPS_DOCS_PORT",
    )


def prometheus(settings: Settings) -> PrometheusService:
    """Prometheus, scraping the scoring replicas and HAProxy of every environment (their
    file_sd targets, written by the local deployment targets); data under the state folder."""
    return PrometheusService(
        settings.prometheus_path,
        settings.run_path,
        settings.prometheus_port,
        targets_dir=settings.scrape_targets_path,
    )


def services(settings: Settings) -> list[ManagedProcess]:
    """The services of the local profile, in start order (the worker last: it needs the
    server, and creates its work pool when missing)."""
    return [
        azurite(settings),
        prefect_server(settings),
        notify_receiver(settings),
        docs_server(settings),
        prometheus(settings),
        prefect_worker(settings),
    ]


def stop_stack(
    settings: Settings,
    release_target: Callable[[], DeploymentTarget],
    restore_dir: Path,
    report: Callable[[str, str, bool], None],
) -> list[str]:
    """Stop the scoring environments, the Docker engine and the services, in that order.

    Every part is tried even when one fails (a target that cannot be built must not keep
    Prefect or Azurite running); what ran in QA and production is remembered first, for
    ``mlops up`` (``mlops.environments``).

    Args:
        settings: The stack's settings.
        release_target: Builds the target that runs QA and production.
        restore_dir: Where to remember their releases.
        report: Called with (part, outcome, ok) for each part.

    Returns:
        The parts that could not be stopped.
    """
    from backends.local.dockerd import DockerEngine
    from mlops.environments import ENVIRONMENTS, remember

    failed: list[str] = []

    def attempt(part: str, step: Callable[[], str | None]) -> None:
        try:
            outcome = step()
        except Exception as exc:  # stop the rest, then report
            failed.append(part)
            report(part, f"could not be stopped: {exc}", False)
        else:
            if outcome:
                report(part, outcome, True)

    try:
        target = release_target()
        remember(target, restore_dir)
        running = [env for env in ENVIRONMENTS if target.current(env) is not None]
    except Exception as exc:  # e.g. the Docker target without an engine
        failed.append("environments")
        report("environments", f"cannot be read: {exc}", False)
        running = []
    for env in running:
        attempt(env, partial(_teardown, target, env))
    engine = DockerEngine(settings.docker_path)
    attempt("docker engine", lambda: "stopped" if engine.stop() else None)
    for service in reversed(services(settings)):
        attempt(service.name, partial(_stop, service))
    return failed


def _teardown(target: DeploymentTarget, environment: str) -> str:
    target.teardown(environment)
    return "torn down"


def _stop(service: ManagedProcess) -> str:
    return "stopped" if service.stop() else "was not running"
