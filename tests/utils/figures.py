"""The reliability figures the fault-injection suite adds up, printed as one line at the end.

Issue 8 asks for one closing line: files lost, duplicates, failed requests, 5xx, secrets
found. Each fault test counts what it checked with ``reliability_figures.add(...)`` (a
session fixture, tests/conftest.py) *and* asserts on its own numbers, so a bad count fails
the test that saw it; the line is the summary a reader looks for, not the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FIGURES = ("files lost", "duplicates", "failed requests", "5xx", "secrets found")


@dataclass
class ReliabilityFigures:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    sources: set[str] = field(default_factory=set)

    def add(self, source: str, **figures: int) -> None:
        """Add counts under their figure names (spaces as underscores: ``files_lost=0``)."""
        for key, value in figures.items():
            name = key.replace("_", " ").removeprefix("n")  # n5xx= -> "5xx"
            if name not in self.counts:
                raise KeyError(f"unknown reliability figure {key!r}; known: {FIGURES}")
            self.counts[name] += int(value)
        self.sources.add(source)

    def line(self) -> str:
        parts = ", ".join(f"{name}: {self.counts[name]}" for name in FIGURES)
        return f"reliability figures ({len(self.sources)} fault tests): {parts}"
