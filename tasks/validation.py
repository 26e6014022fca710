"""Task that validates one data file against the Great Expectations suite."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from expectations.gx_runner import build_stale_indexes
from expectations.validate import ValidationReport, validate_file


@task(name="validate-data", cache_policy=NONE)
def validate_data(path: Path, file: str, docs_dir: Path) -> ValidationReport:
    """Validate a local copy of a file chunk by chunk; publish the report as an artifact,
    pass or fail."""
    # The Data Docs index is rebuilt once per run (publish_data_docs_index), not per file.
    report = validate_file(path, file=file, docs_dir=docs_dir, build_index=False)
    verdict = "passed" if report.success else "FAILED"
    create_markdown_artifact(
        key="data-validation",
        markdown=f"# Data validation {verdict}: `{file}`\n\n{report.to_markdown()}",
        description=report.summary(),
    )
    return report


@task(name="publish-data-docs-index", cache_policy=NONE)
def publish_data_docs_index(docs_dir: Path) -> bool:
    """List the pages of this run's validations in the Data Docs index (once per run: the
    index reads every stored result); False when nothing was validated here."""
    return build_stale_indexes(docs_dir) > 0
