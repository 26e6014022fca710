"""Tasks of the release pipeline: resolve, build, deploy, smoke test, promote, roll back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from core.interfaces import (
    DeploymentTarget,
    Endpoint,
    ImageBuilder,
    ModelRegistry,
    ModelVersion,
    NotFoundError,
    ReleaseSpec,
)
from core.probe import ServiceProbe
from core.results import ReleaseReport
from core.smoke import SmokeConfig, SmokeReport
from training.artifacts import GOLDEN_FILE


@task(name="resolve-version", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def resolve_version(registry: ModelRegistry, name: str, version: str | None) -> ModelVersion:
    """The version asked for, or the one the ``candidate`` alias points at."""
    if version is not None:
        return registry.get(name, version)
    candidate = registry.get_alias(name, "candidate")
    if candidate is None:
        raise NotFoundError(f"{name} has no candidate version: run the retraining flow first")
    return candidate


@task(name="download-model", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def download_model(registry: ModelRegistry, version: ModelVersion, dest: Path) -> Path:
    """The version's artifact folder, sha256-checked against the registry."""
    return registry.download(version.name, version.version, dest)


@task(name="build-image", cache_policy=NONE)
def build_image(
    builder: ImageBuilder | None, version: ModelVersion, artifact_dir: Path, code_version: str
) -> str:
    """Build (or reuse) the scoring image; "" for targets that run the model folder itself."""
    if builder is None:
        return ""
    return builder.build(version.name, version.version, artifact_dir, code_version)


@task(name="deploy", cache_policy=NONE)
def deploy(target: DeploymentTarget, environment: str, spec: ReleaseSpec) -> Endpoint:
    endpoint = target.deploy(environment, spec)
    get_run_logger().info("%s now serves v%s at %s", environment, spec.model_version, endpoint.url)
    return endpoint


@task(name="smoke-test", cache_policy=NONE)
def smoke_test(
    endpoint: Endpoint,
    artifact_dir: Path,
    expected_version: str,
    config: SmokeConfig,
    probe: ServiceProbe,
) -> SmokeReport:
    """Run the smoke test against an endpoint and keep its report as an artifact."""
    golden = json.loads((artifact_dir / GOLDEN_FILE).read_text())
    report = probe.smoke_test(endpoint, golden, expected_version, config)
    verdict = "passed" if report.passed else "FAILED"
    create_markdown_artifact(
        key=f"smoke-test-{endpoint.environment}",
        markdown=report.to_markdown(),
        description=f"{endpoint.environment} v{expected_version}: smoke test {verdict}",
    )
    return report


@task(name="teardown", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def teardown(target: DeploymentTarget, environment: str) -> None:
    target.teardown(environment)


@task(name="roll-back", cache_policy=NONE)
def roll_back(target: DeploymentTarget, environment: str) -> Endpoint | None:
    """Put the previous release back; with none (first release) take the environment down."""
    if target.previous(environment) is None:
        target.teardown(environment)
        return None
    return target.rollback(environment)


@task(name="verify-serving", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def verify_serving(target: DeploymentTarget, environment: str, probe: ServiceProbe) -> str | None:
    """The version the environment serves, asked of the service itself (None when nothing is
    deployed)."""
    endpoint = target.current(environment)
    if endpoint is None:
        return None
    served = probe.served_version(endpoint)
    if served != endpoint.model_version:
        raise RuntimeError(f"{environment} serves v{served}, expected v{endpoint.model_version}")
    return served


@task(name="set-stage", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def set_stage(
    registry: ModelRegistry, version: ModelVersion, stage: str, tags: dict[str, str]
) -> None:
    """Point a stage alias at the version and record what happened as tags."""
    registry.set_alias(version.name, stage, version.version)
    registry.set_tags(version.name, version.version, tags)


@task(name="clear-stage", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def clear_stage(registry: ModelRegistry, version: ModelVersion, stage: str) -> None:
    registry.delete_alias(version.name, stage)


@task(name="production-state", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def production_state(
    registry: ModelRegistry, target: DeploymentTarget, name: str
) -> tuple[ModelVersion | None, ReleaseSpec | None]:
    """What the registry calls production, and what the production environment runs."""
    return registry.get_alias(name, "production"), target.current_release("production")


@task(name="reject-version", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def reject_version(registry: ModelRegistry, version: ModelVersion, report: dict[str, Any]) -> None:
    """Tag the version ``rejected`` with the report that rejected it."""
    registry.set_tags(
        version.name,
        version.version,
        {"release.status": "rejected", "release.report": json.dumps(report, default=str)},
    )


@task(name="publish-release-report", cache_policy=NONE)
def publish_release_report(report: ReleaseReport) -> None:
    lines = [f"# Release {report.outcome}", "", report.message, "", "| | |", "|---|---|"]
    for key in ("model", "version", "production_before", "production_after", "image", "endpoint"):
        value = getattr(report, key)
        if value:
            lines.append(f"| {key.replace('_', ' ')} | `{value}` |")
    for stage, smoke in (("qa", report.smoke_qa), ("production", report.smoke_production)):
        if smoke is not None:
            lines += ["", f"## Smoke test, {stage}", "", smoke]
    create_markdown_artifact(
        key="release-report", markdown="\n".join(lines), description=report.message
    )
