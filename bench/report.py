"""Medians of interleaved rounds, the results table and the issue's targets.

Targets (issue 11), each checked against figures of the same run:

- the production URL serves >= 8x the AML server's 2-worker req/s with 1 row, >= 5x with
  100 rows;
- its p99 is <= 10 ms at 16 connections, and no request fails;
- it serves >= 80% of our service run as 2 direct processes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bench.wrk import WrkResult

# Keys of the systems the targets compare (the harness names its systems with these).
PRODUCTION = "production"
AML_2 = "aml-2"
OURS_2 = "ours-2"
P99_LIMIT_MS = 10.0
VS_AML = {1: 8.0, 100: 5.0}  # rows -> least production/AML-2 ratio
VS_DIRECT = 0.80
COLLECT_COST = 0.95  # collection on keeps 95% of the throughput (issue 12)


@dataclass(frozen=True)
class Summary:
    """One system at one payload size over all rounds: medians, and errors summed."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rounds: int


def summarize(results: Sequence[WrkResult]) -> Summary:
    """Medians of req/s, p50 and p99 over the rounds; the errors of every round added up."""
    if not results:
        raise ValueError("no results to summarize")
    return Summary(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
        rounds=len(results),
    )


@dataclass(frozen=True)
class Check:
    """One target: what was measured against what was asked."""

    name: str
    measured: float
    target: float
    ok: bool
    unit: str = "x"

    def line(self) -> str:
        verdict = "MET" if self.ok else "NOT MET"
        if self.unit == "x":
            return f"{self.name}: {self.measured:.2f}x (target >= {self.target:g}x)  {verdict}"
        if self.unit == "ms":
            return f"{self.name}: {self.measured:.2f} ms (target <= {self.target:g} ms)  {verdict}"
        return f"{self.name}: {self.measured:g} (target {self.target:g})  {verdict}"


Table = Mapping[str, Mapping[int, Summary]]  # system key -> rows -> summary


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf") if a > 0 else 0.0


def checks(table: Table) -> list[Check]:
    """Every target the measured systems allow to check (a system left out: no check)."""
    found: list[Check] = []
    prod = table.get(PRODUCTION, {})
    for rows, least in VS_AML.items():
        if rows in prod and rows in table.get(AML_2, {}):
            ratio = _ratio(prod[rows].rps, table[AML_2][rows].rps)
            found.append(Check(f"production / AML 2 workers, {rows} row(s)", ratio, least,
                               ratio >= least))  # fmt: skip
    for rows, summary in sorted(prod.items()):
        found.append(Check(f"production p99, {rows} row(s)", summary.p99_ms, P99_LIMIT_MS,
                           summary.p99_ms <= P99_LIMIT_MS, "ms"))  # fmt: skip
    if prod:
        errors = sum(s.errors for s in prod.values())
        found.append(Check("production failed requests", errors, 0, errors == 0, "count"))
    for rows, summary in sorted(prod.items()):
        if rows in table.get(OURS_2, {}):
            ratio = _ratio(summary.rps, table[OURS_2][rows].rps)
            found.append(Check(f"production / our 2 direct processes, {rows} row(s)", ratio,
                               VS_DIRECT, ratio >= VS_DIRECT))  # fmt: skip
    for on, off in (("ours-1-collect", "ours-1"), ("production-collect", PRODUCTION)):
        for rows, summary in sorted(table.get(on, {}).items()):
            if rows in table.get(off, {}):
                ratio = _ratio(summary.rps, table[off][rows].rps)
                found.append(Check(f"{on} / {off}, {rows} row(s)", ratio, COLLECT_COST,
                                   ratio >= COLLECT_COST))  # fmt: skip
    return found


def markdown(table: Table, names: Mapping[str, str], sizes: Iterable[int]) -> str:
    """The results as a markdown table: one line per system, req/s, p50/p99 and errors per
    payload size, and each system's req/s relative to the AML server with 2 workers."""
    sizes = list(sizes)
    head = "| system |" + "".join(
        f" {n} row{'s' if n > 1 else ''}: req/s | p50 / p99 ms | errors | vs AML-2 |" for n in sizes
    )
    lines = [head, "|---|" + "---:|---:|---:|---:|" * len(sizes)]
    for key, label in names.items():
        cells = [f"| {label} |"]
        for n in sizes:
            s = table.get(key, {}).get(n)
            if s is None:
                cells.append(" - | - | - | - |")
                continue
            base = table.get(AML_2, {}).get(n)
            vs = f"{_ratio(s.rps, base.rps):.1f}x" if base else "-"
            cells.append(f" {s.rps:,.0f} | {s.p50_ms:.1f} / {s.p99_ms:.1f} | {s.errors} | {vs} |")
        lines.append("".join(cells))
    return "\n".join(lines)
