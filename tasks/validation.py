"""Task that validates one data file against the Great Expectations suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from expectations.validate import ValidationReport, validate_bytes


@task(name="validate-data", cache_policy=NONE)
def validate_data(
    blob: bytes, file: str, docs_dir: Path
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Parse and validate a file; publish the report as an artifact, pass or fail."""
    report, frame = validate_bytes(blob, file=file, docs_dir=docs_dir)
    verdict = "passed" if report.success else "FAILED"
    create_markdown_artifact(
        key="data-validation",
        markdown=f"# Data validation {verdict}: `{file}`\n\n{report.to_markdown()}",
        description=report.summary(),
    )
    return report, frame
