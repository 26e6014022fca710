"""Build validation: the reference's CI pipeline as a Prefect flow.

    code quality (ruff check, ruff format --check, mypy) ─┐
    unit tests (pytest + coverage)                        ├─ all passed? ─> publish deployments
    data tests (the GX suite against the labelled corpus) ┘

The three checks run concurrently; the deployments are published only if all of them pass,
the way ``mlops deploy`` publishes them (``core.deploy.publish``: the work pool of
``MLOPS_WORK_POOL``, with its code storage), on the Prefect API the run reports to.
Artifacts: a summary of every check, the test counts and coverage, and the verdict on every
corpus file. The run ends Failed, naming the failed checks.

CI runs it as ``python -m flows.build_validation`` (``--no-publish`` for pull requests), with
``PREFECT_API_URL``/``PREFECT_API_KEY`` from the CI system's secrets; see
``.github/workflows/build-validation.yml`` and ``azure-pipelines.yml``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.states import State

from core.results import BuildValidationReport
from flows.outcome import completed, failed
from tasks.checks import (
    CheckResult,
    code_quality,
    data_tests,
    publish_build_report,
    publish_deployments,
    unit_tests,
)


def _outcome(name: str, state: State[Any]) -> CheckResult:
    """The check's result, also when its task crashed instead of returning one."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, CheckResult):
        return result
    return CheckResult(name, False, f"{state.name}: {state.message or result!r}", tail=repr(result))


def _wait(name: str, future: PrefectFuture[Any]) -> CheckResult:
    future.wait()
    return _outcome(name, future.state)


@flow(name="build-validation")
def build_validation(
    publish: bool = True,
    pytest_args: list[str] | None = None,
    lint_paths: list[str] | None = None,
    corpus: str | None = None,
    publish_command: list[str] | None = None,
    timeout_seconds: float = 1800.0,
    min_coverage: float = 65.0,
) -> State[BuildValidationReport]:
    """Run the checks concurrently; publish the deployments only if all pass.

    Args:
        publish: Publish the deployments when the checks pass (False: validate only).
        pytest_args: What pytest runs (default ``["tests/unit"]``).
        lint_paths: What ruff and mypy check (default: the project as configured).
        corpus: The labelled data corpus (default ``tests/data/corpus.json``); file names in
            it are relative to its folder.
        publish_command: A command run instead of the publishing (default: what ``mlops
            deploy`` does, to the settings' work pool).
        timeout_seconds: Time allowed to each command.
        min_coverage: The unit tests fail below this line coverage (percent) of the
            project's packages; 0 turns the floor off.
    """
    logger = get_run_logger()
    futures = {
        "code-quality": code_quality.submit(lint_paths, timeout_seconds),
        "unit-tests": unit_tests.submit(pytest_args, timeout_seconds, min_coverage),
        "data-tests": data_tests.submit(corpus),
    }
    checks = [_wait(name, future) for name, future in futures.items()]
    failing = [check.name for check in checks if not check.passed]

    published: CheckResult | None = None
    if publish and not failing:
        state = publish_deployments(publish_command, timeout_seconds, return_state=True)
        published = _outcome("publish", state)
        if not published.passed:
            failing.append(published.name)
    publish_build_report(checks, published, publish)

    summary = BuildValidationReport(
        passed=not failing,
        failing=tuple(failing),
        checks={check.name: check.summary for check in checks},
        published=None if published is None else published.passed,
    )
    if failing:
        message = "build validation failed: " + ", ".join(failing)
        logger.error(message)
        return failed(message, summary)
    done = "deployments published" if published else "publishing skipped"
    message = f"all checks passed; {done}"
    logger.info(message)
    return completed(message, summary)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: exit status 0 only if the build validation passed."""
    parser = argparse.ArgumentParser(prog="python -m flows.build_validation")
    parser.add_argument(
        "--no-publish", action="store_true", help="run the checks, do not publish deployments"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed to each command"
    )
    args = parser.parse_args(argv)
    state = build_validation(
        publish=not args.no_publish, timeout_seconds=args.timeout, return_state=True
    )
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
