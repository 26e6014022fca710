"""Build-validation helpers: commands with timeouts, test/coverage reports, corpus verdicts."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from core.checks import (
    CheckResult,
    coverage_percent,
    judge,
    junit_counts,
    report_markdown,
    run_command,
    tail,
)

PY = sys.executable


def test_run_command_captures_output_and_exit_code() -> None:
    code, output, seconds = run_command([PY, "-c", "import sys; print('out'); sys.exit(3)"], 30)
    assert code == 3 and output.strip() == "out" and seconds > 0


def test_a_command_that_cannot_start_gives_127() -> None:
    code, output, _ = run_command(["/no/such/command"], 30)
    assert code == 127 and "cannot run /no/such/command" in output


def test_a_timeout_kills_the_command_and_its_children() -> None:
    script = (
        "import subprocess, sys, time; "
        f"subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)']); "
        "print('started', flush=True); time.sleep(60)"
    )
    started = time.monotonic()
    code, output, _ = run_command([PY, "-c", script], timeout=2)
    assert code == -9 and "started" in output and "timed out after 2 s" in output
    assert time.monotonic() - started < 20  # the grandchild held no pipe open


def test_tail_keeps_the_last_lines() -> None:
    assert tail("\n".join(map(str, range(100))), 3) == "97\n98\n99"


def test_junit_counts(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite tests="10" failures="2" errors="1" skipped="3"/></testsuites>'
    )
    assert junit_counts(report) == {
        "tests": 10,
        "passed": 4,
        "failed": 2,
        "errors": 1,
        "skipped": 3,
    }
    assert junit_counts(tmp_path / "missing.xml")["tests"] == 0


def test_coverage_percent(tmp_path: Path) -> None:
    report = tmp_path / "coverage.json"
    report.write_text(json.dumps({"totals": {"percent_covered": 71.25}}))
    assert coverage_percent(report) == 71.25
    assert coverage_percent(tmp_path / "missing.json") is None


BAD = {"verdict": "fail", "must_fail": [{"expectation": "expect_x", "column": "bmi"}]}


def test_judge_agrees_with_the_labels() -> None:
    assert judge({"verdict": "pass"}, True, set(), "ok") is None
    assert judge(BAD, False, {("expect_x", "bmi"), ("expect_y", None)}, "s") is None


def test_judge_names_what_contradicts_a_label() -> None:
    assert judge({"verdict": "pass"}, False, {("e", None)}, "f: e") == "expected to pass: f: e"
    assert judge(BAD, True, set(), "ok") == "expected to fail, but passed"
    assert judge(BAD, False, {("expect_x", "bp")}, "s") == "did not fail on bmi: expect_x: s"
    assert judge({"verdict": "maybe"}, True, set(), "") == "unknown verdict 'maybe' in the corpus"


def test_report_names_failures_and_shows_their_output() -> None:
    checks = [
        CheckResult("code-quality", False, "failed: ruff check", 1.0, tail="F401 unused"),
        CheckResult("unit-tests", True, "3 passed", 2.0),
    ]
    markdown = report_markdown(checks, None, publish=True)
    assert markdown.startswith("# Build validation: FAILED (code-quality)")
    assert "| code-quality | ❌ FAILED | failed: ruff check | 1.0 |" in markdown
    assert "| publish | ⏭ not run | checks failed | |" in markdown
    assert "```text\nF401 unused\n```" in markdown
    assert repr(checks[0]) == "CheckResult(code-quality: FAILED: failed: ruff check)"


def test_report_of_a_published_build() -> None:
    published = CheckResult("publish", True, "all steps passed", 4.0)
    markdown = report_markdown([CheckResult("data-tests", True, "ok")], published, publish=True)
    assert markdown.startswith("# Build validation: passed")
    assert "| publish | ✅ published | all steps passed | 4.0 |" in markdown
