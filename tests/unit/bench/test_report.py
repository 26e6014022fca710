"""Medians over rounds, the results table and the issue's targets."""

from __future__ import annotations

import pytest

from bench import report
from bench.wrk import WrkResult


def _result(rps: float, p99: float = 5.0, errors: int = 0) -> WrkResult:
    return WrkResult(int(rps * 10), 10.0, 1.0, 2.0, p99, 20.0, errors, 0)


def _summary(rps: float, p99: float = 5.0, errors: int = 0) -> report.Summary:
    return report.Summary(rps, 1.0, p99, errors, 3)


def test_summarize_takes_medians_and_adds_up_errors() -> None:
    summary = report.summarize([_result(100, 9, 1), _result(300, 3), _result(200, 5, 2)])
    assert summary.rps == 200 and summary.p99_ms == 5 and summary.errors == 3
    assert summary.rounds == 3
    with pytest.raises(ValueError):
        report.summarize([])


def test_checks_against_every_target() -> None:
    table = {
        "aml-2": {1: _summary(1000), 100: _summary(500)},
        "ours-2": {1: _summary(10000), 100: _summary(4000)},
        "production": {1: _summary(8000, p99=9.0), 100: _summary(2400, p99=12.0, errors=1)},
    }
    found = {c.name: c for c in report.checks(table)}
    assert found["production / AML 2 workers, 1 row(s)"].measured == 8.0
    assert found["production / AML 2 workers, 1 row(s)"].ok  # 8x is enough
    assert not found["production / AML 2 workers, 100 row(s)"].ok  # 4.8x < 5x
    assert found["production p99, 1 row(s)"].ok
    assert not found["production p99, 100 row(s)"].ok
    assert not found["production failed requests"].ok
    assert found["production / our 2 direct processes, 1 row(s)"].measured == 0.8
    assert found["production / our 2 direct processes, 1 row(s)"].ok
    assert not found["production / our 2 direct processes, 100 row(s)"].ok  # 0.6
    assert "NOT MET" in found["production p99, 100 row(s)"].line()


def test_checks_skip_what_was_not_measured() -> None:
    assert report.checks({"ours-1": {1: _summary(5000)}}) == []
    only_prod = report.checks({"production": {1: _summary(5000)}})
    assert [c.name for c in only_prod] == ["production p99, 1 row(s)", "production failed requests"]


def test_markdown_has_a_line_per_system_and_ratios_to_aml() -> None:
    table = {"aml-2": {1: _summary(1000)}, "production": {1: _summary(8500, p99=7.25)}}
    text = report.markdown(table, {"aml-2": "AML", "production": "prod", "ceiling": "raw"}, [1])
    lines = text.splitlines()
    assert lines[0].startswith("| system | 1 row: req/s |")
    assert lines[3] == "| prod | 8,500 | 1.0 / 7.2 | 0 | 8.5x |"
    assert lines[4] == "| raw | - | - | - | - |"
