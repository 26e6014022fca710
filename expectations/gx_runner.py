"""Run a suite on a DataFrame with a throw-away GX context and build Data Docs for the run.

Each call builds its own ephemeral context (a few milliseconds; importing GX, ~5 s, is the
slow part, paid once per process), so this module keeps no state between runs. (GX itself
remembers the latest context in a process-wide "current project"; eight validations run
at once in threads still got the right verdicts and pages.) Two stores are on disk, both
under the Data Docs directory:

- the Data Docs site itself (``index.html``, ``validations/<suite>/<run>/<time>/*.html``);
- ``_results/``, the raw validation results as JSON. GX's index builder drops pages whose
  result is not in the results store, so persisting results is what keeps the pages of
  earlier runs (each run in its own context) listed in the index.

A run takes ~0.6-1 s on 442 rows (2 idle CPUs; about twice that under load), most of it
GX's own machinery and page rendering. Rebuilding the index reads every stored result
(~12 ms each), so only the newest ``keep_runs`` runs are kept: deleting an old result
makes GX drop its page too.
"""

from __future__ import annotations

import logging
import re
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


def run_suite(
    frame: pd.DataFrame,
    suite: dict[str, Any],
    *,
    file: str,
    docs_dir: Path,
    keep_runs: int | None = KEEP_RUNS,
) -> tuple[list[ExpectationFailure], int, str | None]:
    """Validate ``frame`` against ``suite`` and render the run into ``docs_dir``.

    Args:
        frame: The data, with string column names.
        suite: A GX 1.x suite dict (see ``expectations.build_suite``).
        file: The file name; a filesystem-safe form of it names the run in Data Docs.
        docs_dir: The Data Docs site directory (created if missing).
        keep_runs: How many runs (this one included) the site keeps; None keeps all.

    Returns:
        The failures, the number of expectations evaluated, and the path of this run's
        Data Docs page (``None`` if it was not built).
    """
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier

    docs_dir = docs_dir.resolve()
    if keep_runs is not None:
        prune_results(docs_dir / RESULTS_DIR, keep=max(keep_runs - 1, 0))
    context = gx.get_context(mode="ephemeral", project_config=_context_config(docs_dir))
    gx_suite = context.suites.add(ExpectationSuite(**suite))
    batch = (
        context.data_sources.add_pandas("files")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{gx_suite.name}_definition", data=batch, suite=gx_suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{gx_suite.name}_checkpoint",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])],
            result_format=RESULT_FORMAT,
        )
    )
    outcome = checkpoint.run(
        batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_name(file))
    )
    [(result_id, result)] = outcome.run_results.items()
    failures = [_failure(item) for item in result.results if not item.success]
    return failures, len(result.results), _page(context, result_id)


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
