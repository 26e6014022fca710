"""Flow unit tests: every outcome of the real flows, in seconds.

The flows run in this process on in-memory backends (tests/utils/flow_harness.py) against
an API-only Prefect server. Two slow collaborators are replaced by stand-ins, each tested
for real elsewhere: Great Expectations (~5 s to import, ~1 s a file) by the suite's column
and range rules in pandas, and the model lock (a Prefect global concurrency limit) by a
lock of this process. Releases go to an in-memory target checked by a scripted probe.

What the directory costs (2 cores, 2026-12-02; the machine was shared with other agents, so
the only fair figures are interleaved runs of the two trees and CPU seconds, not wall time on
an idle machine, which could not be had):

- Before (main at 3514177): 24 tests; ``pytest`` reported 116.6 s on the first run (load 1
  rising to 8), 142.4 s interleaved at load ~13; 59.5 CPU s in pytest and its API server,
  plus ~8 s in the sweep's detached training jobs. Where it went: the server started only
  after the conftests' imports (Prefect, the flows, scikit-learn), ran its migrations and
  block registration again on a migrated template, and its health wait built a new HTTP
  client (CA bundle) every 0.2 s beside it; each test copied the Prefect settings and
  flushed the events and log workers; two of the four releases through the Azure fakes
  repeated the other two; every run shipped its logs to the server.
- After: 22 tests (the same assertions), ``pytest`` 87.4 s interleaved with the 142.4 s
  above (0.61x; whole command 125 s vs 172 s, 0.73x); ~34 CPU s in pytest and the server.
  The sweep's three training jobs (a new interpreter each, ~2.5 CPU s apiece, mostly
  importing scikit-learn) and the server's own start-up (~4 CPU s) are now the largest items.

Measured 2026-12-02 15:50 UTC on the idle 2-core machine (load average ~1): the outcome tests
(test_retraining.py + test_release.py, 19 tests) 14.3 s in pytest, server start included; the
whole directory (29 tests, with the monitoring, sweep and Azure-release tests added since)
29.3-31.6 s.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import flows.release as release_module
import flows.retraining as retraining_module
from expectations.validate import (
    ExpectationFailure,
    ValidationReport,
    ValidationSession,
    load_suite,
)
from tests.utils.flow_harness import (  # noqa: F401 (fixtures)
    backends,
    fast_retries,
    prefect_on,
    settings,
)
from training.data import DataFormatError, load_dataset


@pytest.fixture(autouse=True)
def flows_prefect(flows_api: str) -> Iterator[None]:
    """The client on the flows' API server, test by test. No test here reads a run's logs
    back, so they are not shipped to the server. (Once per package was tried: the package's
    settings context, reset at its end, also undid what session fixtures first set up inside
    it, and a later package's test ran against no server at all.)"""
    with prefect_on(flows_api, logs_to_api=False):
        yield


@pytest.fixture(autouse=True)
def _in_process_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model locks (retraining and release) as locks of this process. The real one, a
    Prefect global concurrency limit (tasks/locks.py), costs a 503-and-retry of ~2 s a run
    against the SQLite test server; it is tested on its own (tests/unit/tasks/test_locks.py)
    and inside the flows by the fault suite (tests/faults/flows)."""
    locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    @contextmanager
    def model_lock(name: str, purpose: str = "retraining") -> Iterator[None]:
        with locks[(name, purpose)]:
            yield

    monkeypatch.setattr(retraining_module, "model_lock", model_lock)
    monkeypatch.setattr(release_module, "model_lock", model_lock)


def suite_stand_in(
    path: Path,
    file: str,
    docs_dir: Path,
    suite_path: Path | None = None,
    session: ValidationSession | None = None,
) -> ValidationReport:
    """The suite's (default: training suite's) column-set, row-count and value-range
    expectations, checked with pandas.

    Great Expectations costs ~5 s to import and ~1 s a file; these tests are about what the
    flows conclude from a verdict, so they take it from this stand-in. GX itself is tested
    in tests/unit/expectations and, inside the flow, in tests/integration/flows.
    """
    suite = load_suite(suite_path)
    try:
        frame = load_dataset(path, file)
    except DataFormatError as exc:
        failure = ExpectationFailure("file_is_readable_table", None, None, None, None, str(exc))
        return ValidationReport(False, suite["name"], file, None, [failure], error=str(exc))
    failures = []
    for expectation in suite["expectations"]:
        kind, kwargs = expectation["type"], expectation["kwargs"]
        if kind == "expect_table_columns_to_match_set":
            if sorted(frame.columns) != sorted(kwargs["column_set"]):
                failures.append(ExpectationFailure(kind, None, None, None, list(frame.columns), ""))
        elif kind == "expect_table_row_count_to_be_between":
            if len(frame) < (kwargs["min_value"] or 0):
                failures.append(ExpectationFailure(kind, None, None, None, len(frame), ""))
        elif kind == "expect_column_values_to_be_between" and kwargs["column"] in frame:
            values = frame[kwargs["column"]]
            bad = int(((values < kwargs["min_value"]) | (values > kwargs["max_value"])).sum())
            if bad:
                failures.append(ExpectationFailure(kind, kwargs["column"], bad, None, None, ""))
    return ValidationReport(not failures, suite["name"], file, len(frame), failures)


@pytest.fixture(autouse=True)
def _validation_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retraining_module, "validate_data", suite_stand_in)
