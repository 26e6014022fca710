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
from prefect.states import State

from backends import get_backends, get_release_backends
from core.interfaces import ReleaseSpec
from core.paths import scratch_dir
from core.settings import get_settings
from core.smoke import SmokeConfig
from core.version import code_version
from flows.outcome import completed, failed
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


class ReleaseRejected(RuntimeError):
    """The candidate failed its QA smoke test."""


@flow(name="release")
def release(
    model_name: str | None = None,
    version: str | None = None,
    require_approval: bool = False,
    approval_timeout_seconds: int = 3600,
) -> State[dict[str, Any]]:
    """Release a registered model version through QA to production.

    Args:
        model_name: Registered model name; default from settings.
        version: The version to release; default: the ``candidate`` alias.
        require_approval: Pause after QA until a person resumes the run in the Prefect UI.
        approval_timeout_seconds: How long to wait for that approval before failing.
    """
    logger = get_run_logger()
    settings = get_settings()
    registry = get_backends(settings).registry
    rel = get_release_backends(settings)
    name = model_name or settings.model_name
    smoke = SmokeConfig(
        requests=settings.smoke_requests, p95_budget_ms=settings.smoke_p95_budget_ms
    )

    mv = resolve_version(registry, name, version)
    before, running = production_state(registry, rel.target, name)
    report: dict[str, Any] = {
        "model": name,
        "version": mv.version,
        "production_before": before.version if before else None,
    }
    if before and before.version == mv.version and running and running.model_version == mv.version:
        report |= {
            "outcome": "no-op",
            "production_after": mv.version,
            "message": f"{name} v{mv.version} is already in production: nothing to do.",
        }
        publish_release_report(report)
        return completed(report["message"], report)

    # Everything up to a passed QA smoke test can fail without touching production.
    workdir = scratch_dir(settings.jobs_path, "release-")
    qa_report = None
    try:
        artifact_dir = download_model(registry, mv, workdir)
        image = build_image(rel.builder, mv, artifact_dir, code_version())
        spec = ReleaseSpec(
            model_name=name,
            model_version=mv.version,
            model_sha256=mv.sha256,
            image=image,
            model_uri=artifact_dir.resolve().as_uri(),
            replicas=settings.production_replicas,
        )
        report["image"] = image or f"(process target: {artifact_dir})"
        qa_report = smoke_test(deploy(rel.target, "qa", spec), artifact_dir, mv.version, smoke)
        report["smoke_qa"] = qa_report.to_markdown()
        if not qa_report.passed:
            raise ReleaseRejected(qa_report.summary())
    except Exception as exc:  # any failure before production rejects the version
        teardown(rel.target, "qa")
        reject_version(
            registry,
            mv,
            {
                "stage": "qa",
                "reason": str(exc),
                "smoke": qa_report.to_dict() if qa_report else None,
            },
        )
        report |= {
            "outcome": "rejected in QA",
            "production_after": report["production_before"],
            "message": f"{name} v{mv.version} failed QA ({exc}); production unchanged.",
        }
        publish_release_report(report)
        return failed(report["message"], report)
    set_stage(registry, mv, "qa", {"release.qa": "passed"})

    if require_approval:
        logger.info("waiting for approval: resume this run in the Prefect UI to promote")
        try:
            pause_flow_run(timeout=approval_timeout_seconds)
        except FlowPauseTimeout:
            teardown(rel.target, "qa")
            clear_stage(registry, mv, "qa")
            report |= {
                "outcome": "not approved",
                "production_after": report["production_before"],
                "message": f"{name} v{mv.version} passed QA but was not approved within "
                f"{approval_timeout_seconds} s; production unchanged.",
            }
            publish_release_report(report)
            return failed(report["message"], report)

    # Production: rolling replacement behind the stable URL. A deploy that fails never
    # switched traffic; a switched release that fails its smoke test is rolled back.
    prod_state = deploy(rel.target, "production", spec, return_state=True)
    prod_report = None
    if prod_state.is_completed():
        prod_report = smoke_test(prod_state.result(), artifact_dir, mv.version, smoke)
        report["smoke_production"] = prod_report.to_markdown()
    if prod_report is None or not prod_report.passed:
        why = prod_state.message if prod_report is None else prod_report.summary()
        if prod_report is not None:
            roll_back(rel.target, "production")
        serving = verify_serving(rel.target, "production")
        teardown(rel.target, "qa")
        clear_stage(registry, mv, "qa")
        reject_version(
            registry,
            mv,
            {
                "stage": "production",
                "reason": why,
                "smoke": prod_report.to_dict() if prod_report else None,
            },
        )
        report |= {
            "outcome": "rolled back",
            "production_after": serving,
            "message": f"{name} v{mv.version} failed in production ({why}); production "
            + (f"serves v{serving}" if serving else "is empty (first release)")
            + ".",
        }
        publish_release_report(report)
        return failed(report["message"], report)

    endpoint = prod_state.result()
    set_stage(registry, mv, "production", {"release.status": "production", "release.image": image})
    teardown(rel.target, "qa")
    clear_stage(registry, mv, "qa")
    report |= {
        "outcome": "released",
        "production_after": mv.version,
        "endpoint": endpoint.url,
        "smoke_production": prod_report.to_markdown(),
        "message": f"{name} v{mv.version} is in production at {endpoint.url}/score",
    }
    publish_release_report(report)
    logger.info(report["message"])
    return completed(report["message"], report)
