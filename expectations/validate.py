"""Validate a data file against the committed expectation suite; return a structured report.

``validate_bytes`` parses first (an empty, header-only or binary file is a failed report,
not an exception), then ``validate_frame`` runs the GX suite and renders Data Docs for the
run, passing or failing; ``validate_file`` reads a file from disk and validates it chunk
by chunk with the same suite (what the retraining flow uses). None raises on bad data: a
frame with the wrong columns, strings in numeric columns or nothing but NaN yields
failures. They do raise when the suite itself is missing or invalid, which is a
deployment error, not a data error.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from expectations.build_suite import SUITE_PATH
from expectations.chunked import ChunkedVerdict
from expectations.gx_runner import KEEP_RUNS, ValidationSession, failures_of, run_suite
from expectations.report import ExpectationFailure, ValidationReport
from training.chunks import CHUNK_ROWS, iter_dataset
from training.data import DataFormatError, load_dataset

__all__ = [
    "ExpectationFailure",
    "ValidationReport",
    "ValidationSession",
    "load_suite",
    "validate_bytes",
    "validate_file",
    "validate_frame",
]

logger = logging.getLogger(__name__)

UNREADABLE = "file_is_readable_table"
DUPLICATE_COLUMNS = "column_names_are_unique"
SUITE_ERROR = "suite_could_be_evaluated"


def load_suite(suite_path: Path | None = None) -> dict[str, Any]:
    """Read a suite JSON file (default: the committed ``training_data`` suite)."""
    path = suite_path or SUITE_PATH
    suite: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return suite


def validate_frame(
    df: pd.DataFrame,
    *,
    file: str,
    docs_dir: Path,
    suite_path: Path | None = None,
    keep_runs: int | None = KEEP_RUNS,
    session: ValidationSession | None = None,
) -> ValidationReport:
    """Run the expectation suite on a DataFrame and build Data Docs for the run.

    Args:
        df: The data as read from the file, with no type coercion.
        file: The file name, shown in the report and naming the run in Data Docs.
        docs_dir: The Data Docs site directory; kept across runs, one page per run.
        suite_path: The suite JSON (default: ``expectations/suites/training_data.json``).
        keep_runs: Runs the Data Docs site keeps, newest first (None: all). The index
            rebuild reads every kept result, ~12 ms each, so this caps its cost.
        session: The session whose GX runner to reuse (a burst of files); None: one
            for this call alone (GX's set-up paid again).

    Returns:
        The report; ``success`` is False if any expectation failed or could not be
        evaluated, and ``data_docs`` is the path of this run's HTML page.
    """
    suite = load_suite(suite_path)
    frame, extra = _normalise(df)
    started = time.perf_counter()
    try:
        failures, evaluated, page = run_suite(
            frame, suite, file=file, docs_dir=docs_dir, keep_runs=keep_runs, session=session
        )
    except Exception as exc:  # GX internals on a pathological frame: report, never crash
        return _could_not_run(exc, file, suite["name"], len(frame), extra)
    logger.debug("validated %s in %.2f s", file, time.perf_counter() - started)
    failures = [*extra, *sorted(map(_explain(frame), failures), key=_order(suite))]
    index = docs_dir.resolve() / "index.html"
    report = ValidationReport(
        success=not failures,
        suite=suite["name"],
        file=file,
        rows=len(frame),
        failures=failures,
        evaluated=evaluated + len(extra),
        data_docs=page or (str(index) if index.exists() else None),
    )
    logger.info("%s", report.summary())
    return report


def validate_bytes(
    data: bytes,
    *,
    file: str,
    docs_dir: Path,
    suite_path: Path | None = None,
    keep_runs: int | None = KEEP_RUNS,
    session: ValidationSession | None = None,
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Parse a CSV or Parquet file's content, then validate it like ``validate_frame``.

    Args:
        data: The raw file content.
        file: The file name; ``.parquet``/``.pq`` (or the ``PAR1`` magic) selects Parquet.
        docs_dir: The Data Docs site directory.
        suite_path: The suite JSON (default: the committed ``training_data`` suite).
        keep_runs: Runs the Data Docs site keeps (see ``validate_frame``).
        session: The session whose GX runner to reuse (see ``validate_frame``).

    Returns:
        The report and the parsed frame. An unreadable file (empty, header only, binary,
        malformed) gives a failed report with ``error`` set and a single
        ``file_is_readable_table`` failure, no GX run, and ``None`` for the frame.
    """
    try:
        frame = load_dataset(data, file)
    except DataFormatError as exc:
        return _unreadable(exc, file, len(data), load_suite(suite_path)["name"]), None
    report = validate_frame(
        frame,
        file=file,
        docs_dir=docs_dir,
        suite_path=suite_path,
        keep_runs=keep_runs,
        session=session,
    )
    return report, frame


def validate_file(
    path: Path,
    *,
    file: str,
    docs_dir: Path,
    suite_path: Path | None = None,
    keep_runs: int | None = KEEP_RUNS,
    chunk_rows: int = CHUNK_ROWS,
    build_index: bool = True,
    session: ValidationSession | None = None,
) -> ValidationReport:
    """Validate a CSV or Parquet file chunk by chunk with the same suite (``chunked.py``).

    Memory holds one chunk (``chunk_rows`` rows), whatever the file's size. A file of one
    chunk gets exactly ``validate_frame``'s verdict. Over several chunks, row-level failures
    are summed with their row counts and the mean, standard deviation and row count are
    judged on the whole file. One Data Docs page per file (GX's run of the first chunk,
    with the file's verdicts); ``build_index=False`` leaves the site's index to the
    ``session``'s ``build_stale_indexes`` (once per burst of files).

    Returns:
        The report, as ``validate_bytes`` gives it (an unreadable file: one
        ``file_is_readable_table`` failure, even when the problem is late in the file).
    """
    suite = load_suite(suite_path)
    runner = (session or ValidationSession()).runner_for(suite, docs_dir)
    verdict = ChunkedVerdict(suite)
    first: tuple[Any, list[ExpectationFailure]] | None = None
    extra: list[ExpectationFailure] = []
    started = time.perf_counter()
    try:
        for chunk in iter_dataset(path, file, chunk_rows):
            frame, duplicates = _normalise(chunk)
            extra = extra or duplicates
            result = runner.validate(frame)
            explained = [_explain(frame)(failure) for failure in failures_of(result)]
            verdict.add(frame, result, explained)
            if first is None:
                first = (result, explained)
    except DataFormatError as exc:
        return _unreadable(exc, file, path.stat().st_size, suite["name"])
    except Exception as exc:  # GX internals on a pathological frame: report, never crash
        return _could_not_run(exc, file, suite["name"], verdict.rows, extra)
    assert first is not None  # iter_dataset yields at least one chunk or raises
    result, explained = first
    failures = explained if verdict.chunks == 1 else verdict.result()
    failures = [*extra, *sorted(failures, key=_order(suite))]
    if verdict.chunks > 1:
        _mark(result, failures, verdict.rows)
    page = runner.publish(result, file, keep_runs, build_index=build_index)
    logger.info(
        "validated %s: %d rows in %d chunks in %.2f s",
        file, verdict.rows, verdict.chunks, time.perf_counter() - started,
    )  # fmt: skip
    index = docs_dir.resolve() / "index.html"
    report = ValidationReport(
        success=not failures,
        suite=suite["name"],
        file=file,
        rows=verdict.rows,
        failures=failures,
        evaluated=len(result.results) + len(extra),
        data_docs=page or (str(index) if index.exists() else None),
    )
    logger.info("%s", report.summary())
    return report


def _could_not_run(
    exc: Exception, file: str, suite: str, rows: int, extra: list[ExpectationFailure]
) -> ValidationReport:
    """The failed report of a suite GX could not evaluate on the data (logged with its trace)."""
    logger.exception("validation of %s could not run", file)
    failure = ExpectationFailure(SUITE_ERROR, None, None, None, None, f"{exc!r}")
    return ValidationReport(
        success=False,
        suite=suite,
        file=file,
        rows=rows,
        failures=[*extra, failure],
        error=f"validation could not run: {exc}",
    )


def _unreadable(exc: DataFormatError, file: str, size: int, suite: str) -> ValidationReport:
    # training.data.DataFormatError carries the bare problem; str() prefixes the name.
    problem = str(getattr(exc, "problem", None) or exc)
    logger.warning("%s is not a readable table: %s", file, problem)
    failure = ExpectationFailure(UNREADABLE, None, None, None, f"{size} bytes", problem)
    return ValidationReport(
        success=False, suite=suite, file=file, rows=None, failures=[failure], error=problem
    )


def _mark(result: Any, failures: list[ExpectationFailure], rows: int) -> None:
    """Make the first chunk's GX result, rendered as the file's page, carry the file's
    verdicts and counts (its samples of unexpected values stay the first chunk's)."""
    by_key = {(f.expectation, f.column): f for f in failures}
    for item in result.results:
        config = item.expectation_config
        failure = by_key.get((config.type, config.kwargs.get("column")))
        item.success = failure is None
        if failure is not None and item.result is not None:
            if failure.unexpected_count is not None:
                item.result["unexpected_count"] = failure.unexpected_count
                item.result["unexpected_percent"] = failure.unexpected_percent
            if failure.observed is not None:
                item.result["observed_value"] = failure.observed
        if item.result is not None and "element_count" in item.result:
            item.result["element_count"] = rows
    evaluated = len(result.results)
    passed = sum(1 for item in result.results if item.success)
    result.success = passed == evaluated
    result.statistics.update(
        successful_expectations=passed,
        unsuccessful_expectations=evaluated - passed,
        success_percent=100.0 * passed / evaluated if evaluated else None,
    )


def _normalise(df: pd.DataFrame) -> tuple[pd.DataFrame, list[ExpectationFailure]]:
    """String column names, unique (GX cannot address a duplicated name), fresh index."""
    names = [str(column).strip() for column in df.columns]
    counts = Counter(names)
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
    frame = df.set_axis(unique, axis=1).reset_index(drop=True)
    failures = [
        ExpectationFailure(
            DUPLICATE_COLUMNS, name, None, None, count, f"column name appears {count} times"
        )
        for name, count in counts.items()
        if count > 1
    ]
    return frame, failures


def _explain(frame: pd.DataFrame) -> Any:
    """Make GX's details actionable: name absent columns and the values that are not numbers."""

    def explain(failure: ExpectationFailure) -> ExpectationFailure:
        if failure.column is None:
            return failure
        if failure.column not in frame.columns:
            return replace(failure, details=f"column {failure.column!r} is not in the file")
        if failure.expectation == "expect_column_values_to_be_in_type_list":
            values = frame[failure.column]
            try:
                bad = values[values.notna() & pd.to_numeric(values, errors="coerce").isna()]
            except (TypeError, ValueError):  # lists, dicts...: nothing numeric to compare
                return failure
            if len(bad):
                sample = sorted({str(value) for value in bad})[:5]
                note = f"{len(bad)} values are not numbers, e.g. {sample}"
                return replace(failure, details=f"{note}; {failure.details}")
        return failure

    return explain


def _order(suite: dict[str, Any]) -> Any:
    """Sort failures in suite order: table-level first, then column by column."""
    position = {
        (item["type"], item["kwargs"].get("column")): rank
        for rank, item in enumerate(suite["expectations"])
    }
    return lambda failure: position.get((failure.expectation, failure.column), len(position))
