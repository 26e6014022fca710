"""Release: registered model -> scoring image -> QA -> smoke test -> production -> smoke test.

Every failure path ends in a known state: a QA failure tears QA down, tags the version
``rejected`` and leaves production untouched; a production failure rolls production back to
the release it replaced and checks that it serves. Only composition lives here.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.runtime import flow_run
from prefect.states import State

from core.interfaces import ModelVersion, ReleaseSpec
from core.outcomes import (
    release_is_no_op,
    release_no_op,
    release_released,
    release_stopped,
    stop_rejects_version,
)
from core.paths import scratch_dir
from core.results import ReleaseReport, ReleaseStage
from core.settings import get_settings
from core.smoke import SmokeConfig
from core.version import code_version
from flows.outcome import completed, failed
from flows.resources import ReleaseResources, default_release_resources
from tasks.locks import model_lock
from tasks.release import (
    build_image,
    clear_stage,
    deploy,
    download_model,
    production_state,
    publish_release_report,
    reject_version,
    resolve_version,
    roll_back,
    set_stage,
    smoke_test,
    teardown,
    verify_serving,
)
from tasks.timeline import publish_pipeline_breakdown


class ReleaseStopped(RuntimeError):
    """A stage of the release failed its check; ``smoke`` is the failing smoke report."""

    def __init__(self, reason: str, smoke: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.smoke = smoke


@flow(name="release")
def release(
    model_name: str | None = None,
    version: str | None = None,
    require_approval: bool = False,
    approval_timeout_seconds: int = 3600,
    resources: ReleaseResources | None = None,
) -> State[ReleaseReport]:
    """Release a registered model version through QA to production.

    Every failure ends the same way (``_stop``): production restored and checked, QA torn
    down, the version tagged rejected (unless only the approval was missing), a report.

    Args:
        model_name: Registered model name; default from settings.
        version: The version to release; default: the ``candidate`` alias.
        require_approval: Pause after QA until a person resumes the run in the Prefect UI.
        approval_timeout_seconds: How long to wait for that approval before failing.
        resources: Registry, image builder, deployment target and smoke test client;
            default: those of the settings' profile (tests hand in-memory ones).
    """
    settings = get_settings()
    name = model_name or settings.model_name
    # One release per model at a time, however started: the deployment's concurrency limit
    # does not hold a ``mlops release`` run in its own process (tasks/locks.py).
    with model_lock(name, "release"):
        return _release(name, version, require_approval, approval_timeout_seconds, resources)


def _release(
    name: str,
    version: str | None,
    require_approval: bool,
    approval_timeout_seconds: int,
    resources: ReleaseResources | None,
) -> State[ReleaseReport]:
    logger = get_run_logger()
    settings = get_settings()
    res = resources or default_release_resources(settings)
    smoke = SmokeConfig(
        requests=settings.smoke_requests, p95_budget_ms=settings.smoke_p95_budget_ms
    )

    mv = resolve_version(res.registry, name, version)
    registered, running = production_state(res.registry, res.target, name)
    before = registered.version if registered else None
    if release_is_no_op(mv.version, before, running.model_version if running else None):
        # The target's records say so; only the live service can confirm it (no retries: when
        # it does not answer, redeploying is the remedy, not waiting).
        ask = verify_serving.with_options(retries=0)
        live = ask(res.target, "production", res.probe, return_state=True)
        if live.is_completed() and release_is_no_op(mv.version, before, live.result()):
            _finish_interrupted(res, mv)
            report = release_no_op(name, mv.version)
            publish_release_report(report)
            return completed(report.message, report)
        logger.warning("production should serve v%s but does not answer: redeploying", mv.version)

    stage: ReleaseStage = "qa"
    switched = False  # whether production took this release (a failed deploy never switches)
    image: str | None = None
    smoke_md: dict[str, str] = {}
    try:
        workdir = scratch_dir(settings.jobs_path, "release-")
        artifact_dir = download_model(res.registry, mv, workdir)
        image = build_image(res.builder, mv, artifact_dir, code_version())
        spec = ReleaseSpec(
            model_name=name,
            model_version=mv.version,
            model_sha256=mv.sha256,
            image=image,
            model_uri=artifact_dir.resolve().as_uri(),
            replicas=settings.production_replicas,
        )
        qa = smoke_test(deploy(res.target, "qa", spec), artifact_dir, mv.version, smoke, res.probe)
        smoke_md["qa"] = qa.to_markdown()
        if not qa.passed:
            raise ReleaseStopped(qa.summary(), qa.to_dict())
        set_stage(res.registry, mv, "qa", {"release.qa": "passed"})

        if require_approval:
            stage = "approval"
            logger.info("waiting for approval: resume this run in the Prefect UI to promote")
            try:
                # Poll at least every 10 s (Prefect's default), sooner for short timeouts.
                poll = max(1, min(10, approval_timeout_seconds // 10))
                pause_flow_run(timeout=approval_timeout_seconds, poll_interval=poll)
            except FlowPauseTimeout:
                raise ReleaseStopped(f"no approval within {approval_timeout_seconds} s") from None

        # Production: rolling replacement behind the stable URL. A deploy that fails never
        # switched traffic; a switched release that fails its smoke test is rolled back.
        stage = "production"
        endpoint = deploy(res.target, "production", spec)
        switched = True
        prod = smoke_test(endpoint, artifact_dir, mv.version, smoke, res.probe)
        smoke_md["production"] = prod.to_markdown()
        if not prod.passed:
            raise ReleaseStopped(prod.summary(), prod.to_dict())
    except Exception as exc:  # every failure, expected or not, ends in one known state
        smoke_report = exc.smoke if isinstance(exc, ReleaseStopped) else None
        reason = str(exc) or type(exc).__name__
        return _stop(res, mv, before, stage, switched, reason, smoke_report, image, smoke_md)

    set_stage(
        res.registry, mv, "production", {"release.status": "production", "release.image": image}
    )
    teardown(res.target, "qa")
    clear_stage(res.registry, mv, "qa")
    report = release_released(
        name,
        mv.version,
        before,
        image,
        endpoint.url,
        smoke_md.get("qa"),
        smoke_md.get("production"),
    )
    publish_release_report(report)
    # Landing to production, per stage (the retraining run that registered the version is
    # in its tags). A report only: it must not fail a release that succeeded.
    breakdown = publish_pipeline_breakdown(
        str(flow_run.id), mv.tags.get("flow_run_id"), return_state=True
    )
    if not breakdown.is_completed():
        logger.warning("no pipeline breakdown: %s", breakdown.message)
    logger.info(report.message)
    return completed(report.message, report)


def _finish_interrupted(res: ReleaseResources, mv: ModelVersion) -> None:
    """Production already serves ``mv``; finish what a run killed after promoting it left
    undone: QA torn down, the qa alias cleared, the production record written. (A no-op
    that trusted the aliases alone left QA serving forever after such a crash.)"""
    if res.target.current("qa") is not None:
        get_run_logger().warning(
            "QA still runs after production took v%s: tearing down", mv.version
        )
        teardown(res.target, "qa")
    if res.registry.get_alias(mv.name, "qa") is not None:
        clear_stage(res.registry, mv, "qa")
    if mv.tags.get("release.status") != "production":
        set_stage(res.registry, mv, "production", {"release.status": "production"})


def _stop(
    res: ReleaseResources,
    mv: ModelVersion,
    before: str | None,
    stage: ReleaseStage,
    switched: bool,
    reason: str,
    smoke: dict[str, Any] | None,
    image: str | None,
    smoke_md: dict[str, str],
) -> State[Any]:
    """The one ending of a failed release. Each cleanup step runs even when an earlier one
    failed; what failed is named in the report instead of crashing the run."""
    problems: list[str] = []

    def attempt(what: str, state: State[Any]) -> Any:
        if state.is_completed():
            return state.result()
        problems.append(f"{what}: {state.message}")
        return None

    serving = before
    if switched:
        attempt("roll back", roll_back(res.target, "production", return_state=True))
    if stage == "production":
        serving = attempt(
            "check production",
            verify_serving(res.target, "production", res.probe, return_state=True),
        )
    attempt("tear down QA", teardown(res.target, "qa", return_state=True))
    attempt("clear the qa alias", clear_stage(res.registry, mv, "qa", return_state=True))
    if stop_rejects_version(stage):
        record = {"stage": stage, "reason": reason, "smoke": smoke}
        attempt("tag rejected", reject_version(res.registry, mv, record, return_state=True))
    report = release_stopped(
        mv.name,
        mv.version,
        before,
        stage,
        reason,
        serving,
        image=image,
        smoke_qa=smoke_md.get("qa"),
        smoke_production=smoke_md.get("production"),
        problems=problems,
    )
    publish_release_report(report)
    get_run_logger().error(report.message)
    return failed(report.message, report)
