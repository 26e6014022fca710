"""Tasks of the build validation: code quality, unit tests, data tests, publishing deployments.

Each check returns a ``CheckResult``; a failed check ends its task run Failed with the result
as data, so the UI shows it red and the flow still reads what went wrong. Commands run as
subprocesses from the repository root, with a timeout (the whole process group is killed
when it passes) and their output captured; the tail is logged when they fail.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.settings import get_current_settings
from prefect.states import Completed, Failed, State

from core.checks import (
    CheckResult,
    coverage_percent,
    judge,
    junit_counts,
    report_markdown,
    run_command,
    tail,
)
from core.deploy import DeployError, deploy_env, publish
from core.settings import get_settings
from core.version import REPO_ROOT

__all__ = [
    "CheckResult",
    "code_quality",
    "data_tests",
    "publish_build_report",
    "publish_deployments",
    "unit_tests",
]

COVERED_PACKAGES = ("training", "core", "expectations", "scoring", "mlops", "backends")
CORPUS = REPO_ROOT / "tests" / "data" / "corpus.json"


def _finish(result: CheckResult) -> State[CheckResult]:
    if result.passed:
        get_run_logger().info("%s passed: %s", result.name, result.summary)
        return Completed(message=result.summary, data=result)
    get_run_logger().error("%s FAILED: %s\n%s", result.name, result.summary, result.tail)
    return Failed(message=f"{result.name}: {result.summary}", data=result)


def _run_steps(
    name: str, commands: dict[str, list[str]], timeout: float, **env: str
) -> CheckResult:
    """Run every command (all of them, even after a failure) and judge them together."""
    result = CheckResult(name=name, passed=True, summary="")
    environ = {**os.environ, **env}
    for step, argv in commands.items():
        code, output, seconds = run_command(argv, timeout, environ)
        result.seconds += seconds
        result.steps.append({"step": step, "exit code": code, "seconds": round(seconds, 1)})
        if code != 0:
            result.passed = False
            result.tail += f"$ {' '.join(argv)}\n{tail(output)}\n"
    failed = [s["step"] for s in result.steps if s["exit code"] != 0]
    result.summary = "failed: " + ", ".join(failed) if failed else "all steps passed"
    return result


@task(name="code-quality", cache_policy=NONE)
def code_quality(paths: list[str] | None, timeout: float) -> State[CheckResult]:
    """ruff check, ruff format --check, mypy and the import-linter layer contracts, on
    ``paths`` (default: the project; the contracts always cover the whole tree)."""
    targets = paths or ["."]
    python = sys.executable
    commands = {
        "ruff check": [python, "-m", "ruff", "check", *targets],
        "ruff format": [python, "-m", "ruff", "format", "--check", *targets],
        "mypy": [python, "-m", "mypy", *(paths or [])],  # no paths: those in pyproject.toml
        "import contracts": [str(Path(python).with_name("lint-imports"))],
    }
    return _finish(_run_steps("code-quality", commands, timeout))


@task(name="unit-tests", cache_policy=NONE)
def unit_tests(
    pytest_args: list[str] | None, timeout: float, min_coverage: float = 0.0
) -> State[CheckResult]:
    """pytest (default: ``tests/unit``) with coverage of the project's packages; fails when
    the coverage is below ``min_coverage`` percent."""
    with tempfile.TemporaryDirectory(prefix="build-validation-") as tmp:
        coverage, junit = Path(tmp) / "coverage.json", Path(tmp) / "junit.xml"
        argv = [sys.executable, "-m", "pytest", *(pytest_args or ["tests/unit"]), "-q"]
        argv += ["-p", "no:cacheprovider", f"--junitxml={junit}"]
        argv += [f"--cov={package}" for package in COVERED_PACKAGES]
        argv += [f"--cov-report=json:{coverage}"]
        result = _run_steps(
            "unit-tests", {"pytest": argv}, timeout, COVERAGE_FILE=str(Path(tmp) / ".coverage")
        )
        counts = junit_counts(junit)
        percent = coverage_percent(coverage)
    counts["coverage %"] = None if percent is None else round(percent, 1)
    result.rows = [counts]
    covered = "" if percent is None else f", {percent:.1f}% coverage"
    result.summary = (
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['errors']} errors, "
        f"{counts['skipped']} skipped{covered}"
    )
    if counts["tests"] == 0:
        result.passed, result.summary = False, "no tests ran: " + result.summary
    elif min_coverage and (percent is None or percent < min_coverage):
        result.passed = False
        result.summary += f"; coverage below the {min_coverage:g}% floor"
    return _finish(result)


@task(name="data-tests", cache_policy=NONE)
def data_tests(corpus: str | None) -> State[CheckResult]:
    """The expectation suite against the labelled corpus: every good file must pass and every
    bad file must fail on the expectations (and columns) its label names."""
    # GX is slow to import: only here
    from expectations.validate import ValidationSession, validate_bytes

    corpus_path = Path(corpus) if corpus else CORPUS
    labels: dict[str, dict[str, Any]] = json.loads(corpus_path.read_text())
    result = CheckResult(name="data-tests", passed=True, summary="")
    started = time.perf_counter()
    session = ValidationSession()  # one GX context for the whole corpus
    with tempfile.TemporaryDirectory(prefix="build-validation-docs-") as docs:
        for name, label in sorted(labels.items()):
            path = corpus_path.parent / name
            problem: str | None
            if not path.exists():
                problem, outcome = f"missing file {path}", "missing"
            else:
                report, _ = validate_bytes(
                    path.read_bytes(), file=name, docs_dir=Path(docs), keep_runs=1, session=session
                )
                problem = judge(label, report.success, report.failed(), report.summary())
                outcome = "passed" if report.success else "failed"
            result.rows.append(
                {
                    "file": name,
                    "expected": label.get("verdict"),
                    "validation": outcome,
                    "must fail on": ", ".join(
                        f"{m['column'] or '(table)'}: {m['expectation']}"
                        for m in label.get("must_fail", [])
                    ),
                    "verdict": "ok" if problem is None else "WRONG",
                    "problem": problem or "",
                }
            )
            if problem is not None:
                result.passed = False
                result.tail += f"{name}: {problem}\n"
    result.seconds = time.perf_counter() - started
    wrong = [row["file"] for row in result.rows if row["verdict"] != "ok"]
    result.summary = (
        f"{len(wrong)} of {len(result.rows)} files misjudged: {', '.join(wrong)}"
        if wrong
        else f"all {len(result.rows)} corpus files judged as labelled"
    )
    return _finish(result)


@task(name="publish-deployments", cache_policy=NONE)
def publish_deployments(command: list[str] | None, timeout: float) -> State[CheckResult]:
    """Publish the deployments the way ``mlops deploy`` does (``core.deploy.publish``: the
    settings' work pool, its code storage, prefect.yaml as that pool takes it), on the Prefect
    API this run uses: its URL and key go to the command's environment, never to the logs.
    ``command`` replaces all of it with one command run in the same environment."""
    api = get_current_settings().api
    if not api.url:
        result = CheckResult("publish", False, "no Prefect API to publish to: set PREFECT_API_URL")
        return _finish(result)
    # The API this run reports to wins over the settings' (CI passes it as PREFECT_API_URL).
    settings = get_settings().model_copy(update={"prefect_api_url": str(api.url).rstrip("/")})
    key = None if api.key is None else api.key.get_secret_value()
    if command is not None:
        # What prefect.yaml reads when published (project dir, code version, containers...).
        env = {k: v for k, v in deploy_env(settings).items() if k.startswith("MLOPS_")}
        env["PREFECT_API_URL"] = settings.prefect_api_url
        if key is not None:
            env["PREFECT_API_KEY"] = key
        return _finish(_run_steps("publish", {"deploy": command}, timeout, **env))

    from backends.azure.code_storage import save_code_storage  # prefect-azure: slow import

    started = time.perf_counter()
    try:
        publish(settings, code_storage=save_code_storage, api_key=key, timeout=timeout)
    except DeployError as exc:
        result = CheckResult("publish", False, "failed", tail=tail(str(exc)))
    else:
        result = CheckResult("publish", True, f"published to work pool {settings.work_pool}")
    result.seconds = time.perf_counter() - started
    return _finish(result)


@task(name="publish-build-report", cache_policy=NONE)
def publish_build_report(
    checks: list[CheckResult], published: CheckResult | None, publish: bool
) -> None:
    """Artifacts: the summary of every check, the test counts and coverage, the corpus verdicts."""
    markdown = report_markdown(checks, published, publish)
    create_markdown_artifact(
        key="build-validation", markdown=markdown, description=markdown.splitlines()[0][2:]
    )
    by_name = {check.name: check for check in checks}
    if "unit-tests" in by_name and by_name["unit-tests"].rows:
        tests = by_name["unit-tests"]
        create_table_artifact(key="unit-tests", table=tests.rows, description=tests.summary)
    if "data-tests" in by_name and by_name["data-tests"].rows:
        data = by_name["data-tests"]
        create_table_artifact(key="data-tests", table=data.rows, description=data.summary)
