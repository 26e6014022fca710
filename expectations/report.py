"""The structured outcome of validating one file: what failed, where, and by how much.

Plain dataclasses with JSON-ready fields, so flows can log the one-line ``summary()``,
attach ``to_markdown()`` as an artifact and persist ``to_dict()``, without touching GX.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

TABLE = "(table)"
# The expectations that compare the file's columns with the suite's.
COLUMN_SET_CHECKS = (
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
)


@dataclass(frozen=True)
class ExpectationFailure:
    """One expectation that did not hold (or could not be evaluated).

    Attributes:
        expectation: The GX expectation type, or ``file_is_readable_table`` when the file
            could not be parsed at all.
        column: The column it concerns; ``None`` for table-level expectations.
        unexpected_count: Rows that broke it, for row-wise expectations.
        unexpected_percent: Those rows as a percentage of non-null rows.
        observed: The observed value (a mean, a dtype, the column list...), JSON-ready.
        details: A human-readable explanation: the expected bounds, sample bad values, or
            the error that stopped the expectation from being evaluated.
    """

    expectation: str
    column: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed: object
    details: str


@dataclass
class ValidationReport:
    """The verdict on one file against one expectation suite.

    Attributes:
        success: True when every expectation held.
        suite: The suite name.
        file: The file (or frame) name that was validated.
        rows: Data rows in the file; ``None`` when it could not be parsed.
        failures: The failed expectations, table-level first, then by column.
        evaluated: How many expectations were evaluated (0 if the file was unreadable).
        data_docs: Path to this run's Data Docs HTML page (or the site index).
        error: Why validation could not run normally (unreadable file, GX error), if so.
    """

    success: bool
    suite: str
    file: str
    rows: int | None
    failures: list[ExpectationFailure] = field(default_factory=list)
    evaluated: int = 0
    data_docs: str | None = None
    error: str | None = None

    def summary(self) -> str:
        """One line naming the verdict, the suite, and each failed expectation with its
        column."""
        if self.error and not self.evaluated:
            return f"{self.file}: unreadable: {self.error}"
        if self.success:
            return (
                f"{self.file}: all {self.evaluated} expectations of {self.suite} passed "
                f"({self.rows} rows)"
            )
        parts = []
        for failure in self.failures:
            rows = f" ({failure.unexpected_count} rows)" if failure.unexpected_count else ""
            parts.append(f"{failure.column or TABLE}: {failure.expectation}{rows}")
        # Wrong columns make every check of the missing ones fail too: lead with the cause.
        cause = next(
            (_columns_cause(f) for f in self.failures if f.expectation in COLUMN_SET_CHECKS), ""
        )
        return (
            f"{self.file}: {cause}{len(self.failures)} of {self.evaluated} expectations of "
            f"{self.suite} failed: " + ", ".join(parts)
        )

    def to_markdown(self) -> str:
        """A Markdown block: verdict line, Data Docs link and a table of failures."""
        verdict = "passed" if self.success else "FAILED"
        lines = [
            f"**{_cell(self.file)}**: validation {verdict} against suite `{self.suite}` "
            f"({self.rows if self.rows is not None else '?'} rows, "
            f"{self.evaluated} expectations, {len(self.failures)} failed)",
        ]
        if self.error:
            lines.append(f"\nError: {_cell(self.error)}")
        if self.data_docs:
            lines.append(f"\nData Docs: `{self.data_docs}`")
        if self.failures:
            lines += [
                "",
                "| expectation | column | unexpected rows | observed | details |",
                "|---|---|---|---|---|",
            ]
            for failure in self.failures:
                count = "" if failure.unexpected_count is None else str(failure.unexpected_count)
                if failure.unexpected_percent is not None:
                    count += f" ({failure.unexpected_percent:.1f}%)"
                cells = (
                    failure.expectation,
                    failure.column or TABLE,
                    count,
                    _short(failure.observed),
                    failure.details,
                )
                lines.append("| " + " | ".join(_cell(str(cell)) for cell in cells) + " |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (``json.dumps`` works on it as is)."""
        data = asdict(self)
        data["failures"] = [
            {**failure, "observed": jsonable(failure["observed"])} for failure in data["failures"]
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Rebuild a report from ``to_dict()`` output (e.g. read back from a JSON file)."""
        failures = [ExpectationFailure(**failure) for failure in data.get("failures", [])]
        return cls(**{**data, "failures": failures})

    def failed(self) -> set[tuple[str, str | None]]:
        """The (expectation, column) pairs that failed, for quick membership checks."""
        return {(failure.expectation, failure.column) for failure in self.failures}


def jsonable(value: Any) -> Any:
    """Turn GX/numpy/pandas values into plain JSON types (NaN and infinities become None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(item) for item in value), key=str)
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _short(value: object, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _columns_cause(failure: ExpectationFailure) -> str:
    """``wrong columns (missing: [...]; unexpected: [...]); `` from a column-set failure."""
    found = failure.details.split("; observed", 1)[0].strip() or f"found {failure.observed}"
    return f"wrong columns ({found}); "
