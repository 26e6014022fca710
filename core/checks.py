"""Build-validation helpers free of Prefect: run a command, read test and coverage reports,
judge a data file against its label, render the summary.

``tasks.checks`` wraps them in tasks; ``flows.build_validation`` composes those.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.version import REPO_ROOT

TAIL_LINES = 40


@dataclass
class CheckResult:
    """What one check found: a verdict, a one-line summary and the details behind it."""

    name: str
    passed: bool
    summary: str
    seconds: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)  # one per command run
    rows: list[dict[str, Any]] = field(default_factory=list)  # table rows (tests, corpus)
    tail: str = ""  # the end of the output of what failed

    def __repr__(self) -> str:  # short: Prefect logs it with the task's final state
        verdict = "passed" if self.passed else "FAILED"
        return f"CheckResult({self.name}: {verdict}: {self.summary})"


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_command(
    argv: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[int, str, float]:
    """Run ``argv`` in the repository root; returns (exit code, stdout+stderr, seconds).
    A command that cannot start gives 127; one that times out is killed and gives -9."""
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc}", time.perf_counter() - started
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\n[timed out after {timeout:.0f} s: killed]"
        return -9, output, time.perf_counter() - started
    return proc.returncode, output, time.perf_counter() - started


def junit_counts(path: Path) -> dict[str, Any]:
    """Test counts from a JUnit XML report (zeros when it was not written)."""
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    if path.exists():
        for suite in ET.parse(path).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {
        "tests": counts["tests"],
        "passed": passed,
        "failed": counts["failures"],
        "errors": counts["errors"],
        "skipped": counts["skipped"],
    }


def coverage_percent(path: Path) -> float | None:
    if not path.exists():
        return None
    return float(json.loads(path.read_text())["totals"]["percent_covered"])


def judge(
    label: dict[str, Any], success: bool, failed: set[tuple[str, str | None]], summary: str
) -> str | None:
    """Why a validation outcome contradicts the file's label; None when it agrees."""
    verdict = label.get("verdict")
    if verdict == "pass":
        return None if success else f"expected to pass: {summary}"
    if verdict != "fail":
        return f"unknown verdict {verdict!r} in the corpus"
    if success:
        return "expected to fail, but passed"
    missing = [
        f"{m['column'] or '(table)'}: {m['expectation']}"
        for m in label.get("must_fail", [])
        if (m["expectation"], m["column"]) not in failed
    ]
    return f"did not fail on {', '.join(missing)}: {summary}" if missing else None


def report_markdown(checks: list[CheckResult], published: CheckResult | None, publish: bool) -> str:
    """The run's summary: one row per check (and the publish step), then what failed."""
    failing = [c.name for c in [*checks, *([published] if published else [])] if not c.passed]
    title = "passed" if not failing else f"FAILED ({', '.join(failing)})"
    lines = [f"# Build validation: {title}", "", "| check | result | summary | seconds |"]
    lines.append("|---|---|---|---|")
    for check in checks:
        verdict = "✅ passed" if check.passed else "❌ FAILED"
        lines.append(f"| {check.name} | {verdict} | {check.summary} | {check.seconds:.1f} |")
    if published is not None:
        verdict = "✅ published" if published.passed else "❌ FAILED"
        lines.append(f"| publish | {verdict} | {published.summary} | {published.seconds:.1f} |")
    else:
        why = "checks failed" if publish else "publish=False"
        lines.append(f"| publish | ⏭ not run | {why} | |")
    steps = [(c.name, s) for c in checks if c.steps for s in c.steps]
    if steps:
        lines += ["", "## Commands", "", "| check | step | exit code | seconds |"]
        lines.append("|---|---|---|---|")
        lines += [f"| {n} | {s['step']} | {s['exit code']} | {s['seconds']} |" for n, s in steps]
    for check in [*checks, *([published] if published else [])]:
        if not check.passed and check.tail:
            lines += ["", f"## {check.name}: what failed", "", "```text", check.tail, "```"]
    return "\n".join(lines)
