"""One verdict for a file validated chunk by chunk with the same GX suite.

Row-level expectations (not null, type, value range, column set) fail for the file when
they fail for any chunk; their unexpected rows are summed over the chunks. The aggregate
ones (column mean, column standard deviation, row count) are judged on the whole file:
GX's observed value of each chunk, with the chunk's count of values, is combined exactly
(Chan et al.'s pairwise update of mean and sum of squares) and checked against the suite's
bounds. So a small last chunk cannot fail a mean that the whole file meets, and a file
whose halves drift in opposite directions is judged on its whole mean, as GX would judge
it in one frame. A chunk where GX could not evaluate an aggregate (a text column) keeps
that failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from expectations.report import ExpectationFailure

MEAN = "expect_column_mean_to_be_between"
STDEV = "expect_column_stdev_to_be_between"
ROW_COUNT = "expect_table_row_count_to_be_between"
AGGREGATES = (MEAN, STDEV, ROW_COUNT)

Key = tuple[str, str | None]


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of a column's values, merged chunk by chunk."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, n: int, mean: float, std: float | None) -> None:
        if n == 0:
            return
        m2 = (std or 0.0) ** 2 * (n - 1) if n > 1 else 0.0
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total

    @property
    def std(self) -> float:
        """The sample standard deviation (``ddof=1``, as pandas and GX compute it)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else float("nan")


@dataclass
class ChunkedVerdict:
    """Accumulates the GX results of a file's chunks into the file's failures."""

    suite: dict[str, Any]
    rows: int = 0
    chunks: int = 0
    failures: dict[Key, ExpectationFailure] = field(default_factory=dict)
    firsts: dict[Key, ExpectationFailure] = field(default_factory=dict)
    counted: dict[Key, tuple[int, int]] = field(default_factory=dict)
    moments: dict[str, Moments] = field(default_factory=dict)
    unevaluated: set[Key] = field(default_factory=set)

    def add(self, frame: pd.DataFrame, result: Any, failures: list[ExpectationFailure]) -> None:
        """Take one chunk: its frame (for value counts), GX result and explained failures."""
        self.chunks += 1
        self.rows += len(frame)
        by_key = {(f.expectation, f.column): f for f in failures}
        observed: dict[str, dict[str, float]] = {}
        for item in result.results:
            config = item.expectation_config
            key: Key = (config.type, config.kwargs.get("column"))
            failure = by_key.pop(key, None)
            if config.type not in AGGREGATES:
                self._row_level(key, item, failure)
            elif failure is not None and failure.details.startswith("could not evaluate"):
                self.unevaluated.add(key)
                self.failures.setdefault(key, failure)
            elif config.type in (MEAN, STDEV) and key[1] in frame.columns:
                value = (item.result or {}).get("observed_value")
                if value is not None:
                    observed.setdefault(str(key[1]), {})[config.type] = float(value)
        for column, values in observed.items():
            if MEAN in values:
                count = int(pd.to_numeric(frame[column], errors="coerce").count())
                moments = self.moments.setdefault(column, Moments())
                moments.add(count, values[MEAN], values.get(STDEV))
        for key, failure in by_key.items():  # failures GX did not report (extra checks)
            self.failures.setdefault(key, failure)

    def result(self) -> list[ExpectationFailure]:
        """The file's failures (row counts summed; aggregates judged on the whole file)."""
        failures: dict[Key, ExpectationFailure] = dict(self.failures)
        for key, first in self.firsts.items():
            total, denominator = self.counted[key]
            if first.unexpected_count is None:
                failures[key] = first
                continue
            failures[key] = replace(
                first,
                unexpected_count=total,
                unexpected_percent=round(100.0 * total / denominator, 3) if denominator else None,
                details=f"{total} unexpected rows in the file (first chunk with any: "
                f"{first.details})",
            )
        for item in self.suite["expectations"]:
            kind, kwargs = item["type"], item["kwargs"]
            if kind not in AGGREGATES or (kind, kwargs.get("column")) in self.unevaluated:
                continue
            observed = self._observed(kind, kwargs.get("column"))
            if observed is not None and not _within(observed, kwargs):
                failures[(kind, kwargs.get("column"))] = ExpectationFailure(
                    expectation=kind,
                    column=kwargs.get("column"),
                    unexpected_count=None,
                    unexpected_percent=None,
                    observed=round(observed, 9) if isinstance(observed, float) else observed,
                    details=f"expected between {kwargs.get('min_value')} and "
                    f"{kwargs.get('max_value')}; observed {observed:.6g} over the whole file "
                    f"({self.rows} rows in {self.chunks} chunks)",
                )
        return list(failures.values())

    def _row_level(self, key: Key, item: Any, failure: ExpectationFailure | None) -> None:
        info = dict(item.result or {})
        base = int(info.get("element_count") or 0) - int(info.get("missing_count") or 0)
        total, denominator = self.counted.get(key, (0, 0))
        if failure is not None:
            self.firsts.setdefault(key, failure)
            total += failure.unexpected_count or 0
        self.counted[key] = (total, denominator + max(base, 0))

    def _observed(self, kind: str, column: str | None) -> float | int | None:
        if kind == ROW_COUNT:
            return self.rows
        moments = self.moments.get(column or "")
        if moments is None or moments.n == 0:
            return None
        return moments.mean if kind == MEAN else moments.std


def _within(value: float | int, kwargs: dict[str, Any]) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if isinstance(value, float) and math.isnan(value):
        return False
    if low is not None and (value <= low if kwargs.get("strict_min") else value < low):
        return False
    return not (high is not None and (value >= high if kwargs.get("strict_max") else value > high))
