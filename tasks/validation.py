"""Task that validates one data file against the Great Expectations suite."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from expectations.validate import ValidationReport, validate_file


@task(name="validate-data", cache_policy=NONE)
def validate_data(path: Path, file: str, docs_dir: Path) -> ValidationReport:
    """Validate a local copy of a file chunk by chunk; publish the report as an artifact,
    pass or fail."""
    report = validate_file(path, file=file, docs_dir=docs_dir)
    verdict = "passed" if report.success else "FAILED"
    create_markdown_artifact(
        key="data-validation",
        markdown=f"# Data validation {verdict}: `{file}`\n\n{report.to_markdown()}",
        description=report.summary(),
    )
    return report
