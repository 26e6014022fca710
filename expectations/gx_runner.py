"""Run a suite on DataFrames with one GX context per session and build Data Docs per file.

A ``SuiteRunner`` holds an ephemeral context, the suite and a pandas batch definition; a
``ValidationSession`` keeps one per suite and site (``runner_for``), so a burst of files,
or a file validated in chunks, pays GX's set-up once (importing GX, ~5 s, is paid once per
process anyway). The session belongs to whoever validates the burst (a retraining run, the
build-validation corpus check, a test module) and lives as long as they hold it: nothing is
kept in this module. Two stores are on disk, both under the Data Docs directory:

- the Data Docs site itself (``index.html``, ``validations/<suite>/<run>/<time>/*.html``);
- ``_results/``, the raw validation results as JSON. GX's index builder drops pages whose
  result is not in the results store, so persisting results is what keeps the pages of
  earlier runs listed in the index.

Validating a small file takes ~0.2 s; rendering its page and the index about as much again.
Rebuilding the index reads every stored result (~12 ms each), so only the newest
``keep_runs`` runs are kept: deleting an old result makes GX drop its page too.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from expectations.report import ExpectationFailure, jsonable

logger = logging.getLogger(__name__)

SITE_NAME = "local_site"
RESULTS_DIR = "_results"
KEEP_RUNS = 50
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class SuiteRunner:
    """One GX context, suite and batch definition, reused for every chunk and every file.

    Building them costs a context and a suite load; a session validating a burst of files
    (or one file in chunks) pays that once (``ValidationSession.runner_for``). ``validate``
    only evaluates; ``publish`` stores one result and renders its Data Docs page (the slow
    half of a run).
    Calls are serialised: GX contexts are not meant for concurrent use.
    """

    def __init__(self, suite: dict[str, Any], docs_dir: Path) -> None:
        import great_expectations as gx
        from great_expectations.core.expectation_suite import ExpectationSuite

        self.docs_dir = docs_dir.resolve()
        self.context = gx.get_context(
            mode="ephemeral", project_config=_context_config(self.docs_dir)
        )
        # A copy: GX writes its version into the suite's ``meta``, which would change the
        # caller's dict and so the session's key for it (a second runner for one suite).
        self.suite = self.context.suites.add(ExpectationSuite(**copy.deepcopy(suite)))
        self.batch_definition = (
            self.context.data_sources.add_pandas("files")
            .add_dataframe_asset("frame")
            .add_batch_definition_whole_dataframe("whole_frame")
        )
        self.lock = threading.RLock()
        self.batch_id = "frame"
        self.index_stale = False
        self.suite_page_built = False

    def validate(self, frame: pd.DataFrame) -> Any:
        """The GX suite validation result of ``frame`` (nothing stored or rendered)."""
        from great_expectations.validator.v1_validator import Validator

        with self.lock:
            validator = Validator(
                batch_definition=self.batch_definition,
                batch_parameters={"dataframe": frame},
                result_format=RESULT_FORMAT,
            )
            result = validator.validate_expectation_suite(self.suite)
            # The same for every frame of this batch definition; names the stored result.
            self.batch_id = str(validator.active_batch_id or "frame")
            return result

    def publish(
        self,
        result: Any,
        file: str,
        keep_runs: int | None = KEEP_RUNS,
        *,
        build_index: bool = True,
    ) -> str | None:
        """Store ``result`` as the run of ``file`` and render its Data Docs page; returns the
        page's path (None if it was not built). ``build_index=False`` leaves the index to
        ``build_index`` (it reads every stored result: once per burst, not per file)."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        with self.lock:
            if keep_runs is not None:
                prune_results(self.docs_dir / RESULTS_DIR, keep=max(keep_runs - 1, 0))
            run_id = RunIdentifier(run_name=run_name(file), run_time=datetime.now(UTC))
            result.meta.update(
                run_id=run_id,
                validation_time=run_id.run_time,
                batch_parameters={"dataframe": "<DATAFRAME>"},
            )
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=self.suite.name),
                run_id=run_id,
                batch_identifier=self.batch_id,
            )
            self.context.validation_results_store.set(key, result)
            # The suite's own page, once per runner (the index links it from every run).
            pages: list[Any] = [key]
            if not self.suite_page_built:
                pages.append(key.expectation_suite_identifier)
            try:
                self.context.build_data_docs(
                    site_names=[SITE_NAME], resource_identifiers=pages, build_index=build_index
                )
                self.suite_page_built = True
            except Exception:  # Data Docs are a convenience: never fail a validation
                logger.warning("could not build the Data Docs page of %s", file, exc_info=True)
                return None
            self.index_stale = not build_index
            return _page(self.context, key)

    def build_index(self) -> None:
        """Rebuild the Data Docs index page alone (pages published since are listed)."""
        with self.lock:
            try:
                # GX's own build_data_docs always renders pages too; its index builder alone
                # only reads the stored results.
                site = (self.context.variables.data_docs_sites or {})[SITE_NAME]
                builder = self.context._init_site_builder_for_data_docs_site_creation(
                    site_name=SITE_NAME, site_config=site
                )
                builder.site_index_builder.build()
            except Exception:  # Data Docs are a convenience: never fail a run over them
                logger.warning("could not rebuild the Data Docs index", exc_info=True)
                return
            self.index_stale = False


class ValidationSession:
    """The ``SuiteRunner``s of one burst of validations, one per suite and Data Docs site.

    Its owner hands it to every validation of the burst: each file after the first reuses
    the GX context, the suite, the batch definition and the suite's Data Docs page, and the
    site's index is rebuilt once at the end (``build_stale_indexes``). Thread-safe.
    """

    def __init__(self) -> None:
        self._runners: dict[tuple[str, str], SuiteRunner] = {}
        self._lock = threading.Lock()

    def runner_for(self, suite: dict[str, Any], docs_dir: Path) -> SuiteRunner:
        """This session's runner for the suite and Data Docs site (built on first use)."""
        key = (json.dumps(suite, sort_keys=True, default=str), str(docs_dir.resolve()))
        with self._lock:
            if key not in self._runners:
                self._runners[key] = SuiteRunner(suite, docs_dir)
            return self._runners[key]

    def build_stale_indexes(self, docs_dir: Path) -> int:
        """Rebuild the index of ``docs_dir`` if this session published pages without it;
        returns how many indexes were rebuilt (0 without importing GX when there is
        nothing)."""
        wanted = str(docs_dir.resolve())
        with self._lock:
            stale = [
                r for (_, site), r in self._runners.items() if site == wanted and r.index_stale
            ]
        for runner in stale[:1]:  # one site, one index, whichever runner rebuilds it
            runner.build_index()
        for runner in stale:
            runner.index_stale = False
        return len(stale[:1])


def failures_of(result: Any) -> list[ExpectationFailure]:
    """The failed expectations of a GX suite result."""
    return [_failure(item) for item in result.results if not item.success]


def run_suite(
    frame: pd.DataFrame,
    suite: dict[str, Any],
    *,
    file: str,
    docs_dir: Path,
    keep_runs: int | None = KEEP_RUNS,
    session: ValidationSession | None = None,
) -> tuple[list[ExpectationFailure], int, str | None]:
    """Validate ``frame`` against ``suite`` and render the run into ``docs_dir``.

    Args:
        frame: The data, with string column names.
        suite: A GX 1.x suite dict (see ``expectations.build_suite``).
        file: The file name; a filesystem-safe form of it names the run in Data Docs.
        docs_dir: The Data Docs site directory (created if missing).
        keep_runs: How many runs (this one included) the site keeps; None keeps all.
        session: The session whose runner to reuse; None: a runner for this call alone.

    Returns:
        The failures, the number of expectations evaluated, and the path of this run's
        Data Docs page (``None`` if it was not built).
    """
    runner = (session or ValidationSession()).runner_for(suite, docs_dir)
    result = runner.validate(frame)
    page = runner.publish(result, file, keep_runs)
    return failures_of(result), len(result.results), page


def run_name(file: str) -> str:
    """A filesystem-safe run name from a file name (GX uses it as a directory)."""
    name = _UNSAFE.sub("_", file).lstrip(".")[:120]
    return name or "frame"


def prune_results(results_dir: Path, keep: int) -> int:
    """Delete all but the newest ``keep`` stored results; return how many were deleted."""
    # Layout: <suite>/<run name>/<run time, e.g. 20240101T120000.000000Z>/<batch id>.json
    stored = sorted(results_dir.glob("*/*/*/*.json"), key=lambda path: path.parent.name)
    old = stored[: max(len(stored) - keep, 0)]
    for path in old:
        path.unlink(missing_ok=True)
        for parent in (path.parent, path.parent.parent):
            try:
                parent.rmdir()  # only succeeds when empty
            except OSError:  # not empty (or a concurrent run removed or refilled it)
                break
    return len(old)


def _context_config(docs_dir: Path) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir / RESULTS_DIR),
        },
    }
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    return DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={SITE_NAME: site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )


def _page(context: Any, result_id: Any) -> str | None:
    try:
        urls = context.get_docs_sites_urls(resource_identifier=result_id, site_name=SITE_NAME)
    except Exception:  # Data Docs are a convenience: never fail a validation over them
        logger.warning("could not locate the Data Docs page", exc_info=True)
        return None
    for entry in urls:
        url = entry.get("site_url")
        if url:
            return unquote(urlparse(url).path) if url.startswith("file:") else url
    return None


def _failure(item: Any) -> ExpectationFailure:
    config = item.expectation_config
    kwargs = dict(config.kwargs)
    result = dict(item.result or {})
    error = _exception_message(item.exception_info)
    count = result.get("unexpected_count")
    percent = result.get("unexpected_percent")
    return ExpectationFailure(
        expectation=config.type,
        column=kwargs.get("column"),
        unexpected_count=None if count is None else int(count),
        unexpected_percent=None if percent is None else round(float(percent), 3),
        observed=jsonable(result.get("observed_value")),
        details=f"could not evaluate: {error}" if error else _details(kwargs, result),
    )


def _exception_message(info: Any) -> str | None:
    """GX puts either one exception dict or a dict of them (keyed by metric) here."""
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")
    return None


def _details(kwargs: dict[str, Any], result: dict[str, Any]) -> str:
    parts = []
    if "min_value" in kwargs or "max_value" in kwargs:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        parts.append(f"expected between {low} and {high}")
    if "type_list" in kwargs:
        parts.append(f"expected a type in {kwargs['type_list']}")
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        parts += [f"{key}: {jsonable(value)}" for key, value in mismatched.items() if value]
    if "observed_value" in result:
        parts.append(f"observed {_fmt(result['observed_value'])}")
    if result.get("unexpected_count"):
        sample = jsonable(result.get("partial_unexpected_list") or [])[:5]
        parts.append(f"{result['unexpected_count']} unexpected rows, e.g. {sample}")
    return "; ".join(parts) or "expectation not met"


def _fmt(value: Any) -> str:
    value = jsonable(value)
    return f"{value:.6g}" if isinstance(value, float) else str(value)
