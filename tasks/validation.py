"""Task that validates one data file against the Great Expectations suite."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from core.lake import LocalCopy
from core.provenance import written_by_monitoring
from expectations.build_suite import LABELLED_SUITE_PATH, SUITE_PATH
from expectations.validate import ValidationReport, ValidationSession, validate_file


def suite_for(copy: LocalCopy) -> Path:
    """The suite a landing file is validated with: ``labelled_rows`` for the labelled rows
    the monitoring flow wrote (by blob metadata, not name: core/provenance.py), the
    ``training_data`` suite for everything else."""
    return LABELLED_SUITE_PATH if written_by_monitoring(copy.ref, copy.sha256) else SUITE_PATH


@task(name="validate-data", cache_policy=NONE)
def validate_data(
    path: Path,
    file: str,
    docs_dir: Path,
    suite_path: Path | None = None,
    session: ValidationSession | None = None,
) -> ValidationReport:
    """Validate a local copy of a file chunk by chunk with ``suite_path`` (default: the
    training suite) in the run's ``session`` (its files share one GX context); publish the
    report, naming the suite, as an artifact, pass or fail."""
    # The Data Docs index is rebuilt once per run (publish_data_docs_index), not per file.
    report = validate_file(
        path,
        file=file,
        docs_dir=docs_dir,
        suite_path=suite_path,
        build_index=False,
        session=session,
    )
    verdict = "passed" if report.success else "FAILED"
    create_markdown_artifact(
        key="data-validation",
        markdown=f"# Data validation {verdict}: `{file}` (suite `{report.suite}`)\n\n"
        f"{report.to_markdown()}",
        description=report.summary(),
    )
    return report


@task(name="publish-data-docs-index", cache_policy=NONE)
def publish_data_docs_index(session: ValidationSession, docs_dir: Path) -> bool:
    """List the pages of the run's validations (its ``session``) in the Data Docs index
    (once per run: the index reads every stored result); False when there were none."""
    return session.build_stale_indexes(docs_dir) > 0
