"""The ``mlops`` command: a thin layer over the local stack, the flows and the backends."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from core.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from core.interfaces import DeploymentTarget, Endpoint
    from core.lake import Lake

app = typer.Typer(help="Run the model's life cycle with Prefect.", no_args_is_help=True)
logger = logging.getLogger("mlops")


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


def _use_local_prefect(settings: Settings) -> None:
    """Point this process's Prefect client at the project's server (before Prefect is imported)."""
    from core.deploy import prefect_env

    for key, value in prefect_env(settings).items():
        os.environ.setdefault(key, value)


def _lake(settings: Settings) -> Lake:
    from backends import get_backends
    from core.lake import Lake

    return Lake.of(get_backends(settings).datalake, settings)


@app.command()
def up() -> None:
    """Start the local stack (Azurite, Prefect server and worker, notification receiver, Docker
    engine) and seed the data lake on first start. Running it twice is harmless."""
    from mlops.services import ServiceError
    from mlops.stack import services

    settings = _settings()
    try:
        for service in services(settings):
            pid = service.start(timeout=120)
            typer.echo(f"{service.name:15} running (pid {pid}, log {service.log_file})")
    except ServiceError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    _restore_environments(settings)
    lake = _lake(settings)
    lake.ensure()
    if lake.curated_set() is None and not lake.landed():
        from training.data import reference_dataset

        buf = io.StringIO()
        reference_dataset().to_csv(buf, index=False)
        ref = lake.datalake.put(
            settings.landing_container, "diabetes-seed.csv", buf.getvalue().encode()
        )
        typer.echo(f"seeded the landing container with the diabetes data: {ref.uri}")
    typer.echo(f"Prefect UI: {settings.prefect_ui_url}")
    typer.echo(f"Prometheus: {settings.prometheus_url}  (scoring and HAProxy metrics)")


def _restore_environments(settings: Settings) -> None:
    """Bring QA and production back to what the registry records (after ``mlops down``)."""
    from backends import get_backends, get_release_backends
    from core.interfaces import BackendError
    from mlops.environments import restore

    try:
        release = get_release_backends(settings)
    except BackendError as exc:  # the stack runs; only releases cannot yet
        typer.secho(f"{'release target':15} unusable: {exc}", fg="yellow", err=True)
        return
    if settings.release_target != "process":  # say which one `auto` or `docker` found
        note = " (no Docker engine)" if release.kind == "process" else ""
        typer.echo(f"{'release target':15} {release.kind}{note}")
    registry = get_backends(settings).registry
    for line in restore(release.target, registry, settings.model_name, _restore_dir(settings)):
        typer.echo(line)


def _restore_dir(settings: Settings) -> Path:
    return settings.targets_path / "restore"


@app.command()
def down() -> None:
    """Stop the local stack by PID: scoring environments, Docker engine, Prefect, Azurite.

    Everything that can be stopped is, even when one part fails; the exit code is then 1.
    """
    from mlops.stack import stop_stack

    settings = _settings()

    def report(part: str, outcome: str, ok: bool) -> None:
        if ok:
            typer.echo(f"{part:15} {outcome}")
        else:
            typer.secho(f"{part:15} {outcome}", fg="red", err=True)

    failed = stop_stack(settings, lambda: _release_target(settings), _restore_dir(settings), report)
    if failed:
        typer.secho(f"not stopped: {', '.join(failed)}", fg="red", err=True)
        raise typer.Exit(1)


@app.command()
def deploy() -> None:
    """Publish prefect.yaml's deployments (schedules, triggers) and the automations."""
    settings = _settings()
    _require_prefect(settings)
    from core.deploy import DeployError, publish

    _use_local_prefect(settings)
    from backends.azure.code_storage import save_code_storage
    from mlops.automations import apply_automations
    from mlops.deployments import configure_monitoring, configure_watcher

    try:
        publish(settings, code_storage=save_code_storage)
    except DeployError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    configure_watcher(settings)
    cron = configure_monitoring(settings)
    typer.echo(f"deployments published: {settings.prefect_ui_url}/deployments")
    typer.echo(f"blob watcher: polls every {settings.watch_interval_seconds:g} s")
    typer.echo(f"monitoring: {settings.monitoring_environment} on cron {cron!r} (UTC)")
    ids = apply_automations(settings.prefect_api_url, settings.notify_url)
    typer.echo(f"{len(ids)} automations applied; notifications -> {settings.notifications_path}")


@app.command()
def demo() -> None:
    """Bring the stack up, publish the deployments, and watch new data reach production."""
    settings = _settings()
    up()
    deploy()
    _use_local_prefect(settings)
    from mlops.demo import run_demo
    from mlops.demo_wait import DemoError

    try:
        result = run_demo(settings, _lake(settings))
    except DemoError as exc:
        typer.secho(
            f"{exc}\nSee the runs in the Prefect UI: {settings.prefect_ui_url}/runs", fg="red"
        )
        raise typer.Exit(1) from None
    typer.secho("\nSummary", bold=True)
    for line in result.lines:
        typer.echo(f"  {line}")
    typer.echo("")
    status()
    typer.echo(
        f"\nPrefect UI:   {settings.prefect_ui_url}/runs  (flow runs, artifacts, deployments)"
    )
    typer.echo(f"Data Docs:    http://127.0.0.1:{settings.docs_port}/index.html")
    if result.drift is not None and result.drift.monitoring_run:
        typer.echo(
            f"Monitoring:   {settings.prefect_ui_url}/runs/flow-run/{result.drift.monitoring_run}"
            "  (Artifacts: drift-table, monitoring-report with the charts)"
        )
    typer.echo(
        f"Prometheus:   {settings.prometheus_url}  (scoring and HAProxy metrics; try "
        'sum(scoring_requests_total{environment="production",route="/score"}))'
    )
    typer.echo("Status:       .venv/bin/mlops status  (per environment: version, rates, drift)")
    typer.echo(f"Notifications: {settings.notifications_path}")
    typer.echo(
        'Score:        curl -H "Authorization: Bearer $(.venv/bin/mlops key production)" '
        "-H 'Content-Type: application/json' "
        "-d '{\"data\": [[0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0, 0.02, -0.02]]}' "
        '"$(.venv/bin/mlops url production)/score"'
    )
    typer.echo("The stack keeps running; stop it with `make down` (or `mlops down`).")


@app.command()
def retrain(
    data: Annotated[
        str | None,
        typer.Option(
            help="A landing blob (URL or landing/<name>) or a local file to upload first. "
            "Default: everything waiting in landing."
        ),
    ] = None,
    estimator: Annotated[
        str | None,
        typer.Option(
            help="The model: ridge, elasticnet, hist_gradient_boosting or random_forest. "
            "Default: ridge."
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="A hyperparameter of the estimator, e.g. --param alpha=0.5 (repeatable; "
            "values are read as JSON: 3, 0.1, true, null).",
        ),
    ] = None,
) -> None:
    """Run the retraining flow once and report its outcome."""
    from training.params import params_from_options

    # Checked before anything starts or uploads: a typo costs nothing.
    params = None  # the flow's defaults
    if estimator is not None or param:
        try:
            params = params_from_options(estimator, param or [])
        except ValueError as exc:  # one line naming the estimator and key, no traceback
            typer.secho(f"retrain: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
    settings = _settings()
    _use_local_prefect(settings)
    _require_prefect(settings)
    from core.interfaces import BackendError

    lake = _lake(settings)
    try:
        if data is not None and Path(data).is_file():
            from mlops.runs import upload_once

            ref = upload_once(lake, Path(data).name, Path(data))
            typer.echo(f"uploaded {data} -> {ref.uri}")
            data = f"{ref.container}/{ref.name}"
        elif data is not None:
            lake.resolve(data)  # refuses a blob outside landing before anything runs
    except (BackendError, ValueError) as exc:
        _usage_error(str(exc))

    from core.results import RetrainingSummary

    parameters: dict[str, object] = {"data_uri": data}
    if params is not None:
        parameters["params"] = params.model_dump(mode="json")
    from mlops.runs import run_flow

    state, summary = run_flow("retraining/retraining", parameters, RetrainingSummary)
    color = "green" if state.is_completed() else "red"
    typer.secho(f"retraining {state.name}: {state.message}", fg=color)
    for f in summary.files if summary else ():
        typer.echo(f"  {f.file}: {f.result} ({f.details})")
        if f.quarantined_as:
            typer.echo(f"    quarantined as: {f.quarantined_as} (+ .reason.json)")
        if f.dead_lettered_as:
            typer.echo(f"    dead-lettered as: {f.dead_lettered_as} (+ .error.json)")
        if f.data_docs:
            typer.echo(f"    Data Docs: {f.data_docs}")
    typer.echo(f"Prefect UI: {settings.prefect_ui_url}/runs")
    if not state.is_completed():
        raise typer.Exit(1)


@app.command("batch-score")
def batch_score(
    source: Annotated[
        str,
        typer.Argument(
            help="A lake blob (URL or <container>/<name>) or a local CSV/Parquet file, "
            "uploaded to the batch container first."
        ),
    ],
    version: Annotated[
        str | None, typer.Option(help="The model version. Default: production's.")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(help="Lake folder for the outputs. Default: <stem>.predictions/ beside it."),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Score a file of features with a registered model: predictions and lineage in the lake."""
    settings = _settings()
    _use_local_prefect(settings)
    _require_prefect(settings)
    from core.interfaces import BackendError
    from core.results import BatchScoringReport
    from mlops.runs import run_flow, upload_once

    lake = _lake(settings)
    if Path(source).is_file():
        try:
            lake.datalake.ensure_containers(settings.batch_container)
            ref = upload_once(lake, Path(source).name, Path(source), settings.batch_container)
        except (BackendError, ValueError) as exc:
            _usage_error(str(exc))
        typer.echo(f"uploaded {source} -> {ref.uri}")
        source = ref.uri
    parameters = {"input_uri": source, "model_version": version, "output_uri": output}
    parameters["output_format"] = output_format
    state, report = run_flow("batch-scoring/batch-scoring", parameters, BatchScoringReport)
    color = "green" if state.is_completed() else "red"
    typer.secho(f"batch scoring {state.name}: {state.message}", fg=color)
    if report is not None and report.predictions_uri:
        typer.echo(f"  predictions: {report.predictions_uri}")
        typer.echo(f"  lineage:     {report.output_uri.rstrip('/')}/lineage.json")
    typer.echo(f"Prefect UI: {settings.prefect_ui_url}/runs")
    if not state.is_completed():
        raise typer.Exit(1)


def _usage_error(message: str) -> NoReturn:
    """A clear one-line error for a bad argument or setting: exit 2, no traceback."""
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(2)


@app.command()
def release(
    version: Annotated[
        str | None, typer.Option(help="Version to release. Default: the candidate alias.")
    ] = None,
) -> None:
    """Run the release flow once: image, QA, smoke test, production, smoke test."""
    settings = _settings()
    _use_local_prefect(settings)
    _require_prefect(settings)
    from core.results import ReleaseReport
    from mlops.runs import run_flow

    state, report = run_flow("release/release", {"version": version}, ReleaseReport)
    typer.secho(
        f"release {state.name}: {state.message}", fg="green" if state.is_completed() else "red"
    )
    if report is not None and report.endpoint:
        typer.echo(f"  production URL: {report.endpoint}/score")
        typer.echo("  API key:        mlops key production")
    typer.echo(f"Prefect UI: {settings.prefect_ui_url}/runs")
    if not state.is_completed():
        raise typer.Exit(1)


@app.command()
def key(
    environment: Annotated[str, typer.Argument(help="qa or production")] = "production",
) -> None:
    """Print the API key of a running environment (for curl: Authorization: Bearer <key>)."""
    typer.echo(_endpoint(environment).key)


@app.command()
def url(
    environment: Annotated[str, typer.Argument(help="qa or production")] = "production",
) -> None:
    """Print the base URL of a running environment (the scoring route is <url>/score)."""
    typer.echo(_endpoint(environment).url)


def _endpoint(environment: str) -> Endpoint:
    from core.interfaces import BackendError
    from mlops.environments import ENVIRONMENTS

    if environment not in ENVIRONMENTS:
        _usage_error(f"unknown environment {environment!r}: use one of {', '.join(ENVIRONMENTS)}")
    try:
        endpoint = _release_target(_settings()).current(environment)
    except BackendError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    if endpoint is None:
        typer.secho(f"nothing is deployed in {environment}", fg="red", err=True)
        raise typer.Exit(1)
    return endpoint


def _release_target(settings: Settings) -> DeploymentTarget:
    """The target that runs QA and production now (read-only: starts no engine)."""
    from backends import get_release_backends

    return get_release_backends(settings, start_engine=False).target


def _require_prefect(settings: Settings) -> None:
    from mlops.services import http_ok

    # Another API (MLOPS_PREFECT_API_URL) is not ours to start: its errors come from prefect.
    if settings.prefect_api_is_local and not http_ok(f"{settings.prefect_api_url}/health"):
        typer.secho("The Prefect server is not running: run `mlops up` first.", fg="red", err=True)
        raise typer.Exit(1)


@app.command()
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Only the per-environment report, as JSON.")
    ] = False,
) -> None:
    """What runs; per environment the model version and since when, request and error rates
    (last minute, from Prometheus) and the last drift check; the registered versions."""
    from backends import get_backends
    from backends.local.prometheus import PrometheusApi
    from core.status import render
    from mlops.environments import ENVIRONMENTS
    from mlops.stack import services
    from mlops.status import gather

    settings = _settings()
    try:
        target: DeploymentTarget | None = _release_target(settings)
    except Exception as exc:  # e.g. the Docker target without an engine
        logger.warning("the release target cannot be read: %s", exc)
        target = None
    backends = get_backends(settings)
    report = gather(
        ENVIRONMENTS,
        target,
        PrometheusApi(settings.prometheus_url),
        backends.datalake,
        settings.collected_container,
    )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"profile: {settings.profile}")
    for service in services(settings):
        pid = service.pid()
        typer.echo(f"{service.name:15} {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    versions = backends.registry.list_versions(settings.model_name)
    typer.echo(f"model {settings.model_name}: {len(versions)} version(s)")
    for v in versions:
        aliases = ", ".join(v.aliases) or "-"
        typer.echo(
            f"  v{v.version:4} {aliases:25} sha256 {v.sha256[:12]}  "
            f"data {v.tags.get('data_fingerprint', '')[:12]}"
        )
    try:
        curated = _lake(settings).curated_set()
    except Exception as exc:  # the lake may simply not be running
        typer.echo(f"curated data: unavailable ({type(exc).__name__})")
    else:
        if curated:
            typer.echo(
                f"curated data: {curated.rows} rows from {len(curated.sources)} file(s), "
                f"fingerprint {curated.fingerprint[:12]}"
            )
    typer.echo("")
    typer.echo(render(report))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The Azure SDK logs every HTTP request and response at INFO.
    logging.getLogger("azure").setLevel(logging.WARNING)
    app()
