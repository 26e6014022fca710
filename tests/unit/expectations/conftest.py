"""Fixtures for the data-validation tests: the reference data, the corpus and its reports.

Validating the corpus takes ~1 s per file, so each file is validated once per session into
one shared Data Docs site and the parametrised tests read the stored reports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from expectations.build_suite import reference_frame
from expectations.validate import ValidationReport, ValidationSession, validate_bytes

CORPUS_DIR = Path(__file__).resolve().parents[2] / "data"
Validated = tuple[ValidationReport, pd.DataFrame | None]


@pytest.fixture(scope="session")
def reference() -> pd.DataFrame:
    return reference_frame()


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data_docs")


@pytest.fixture(scope="session")
def gx_session() -> ValidationSession:
    """One GX context per suite for the tests that share ``docs_dir``, as a retraining run
    shares one across its files."""
    return ValidationSession()


@pytest.fixture(scope="session")
def validated(docs_dir: Path, gx_session: ValidationSession) -> Callable[[str], Validated]:
    """Validate a corpus file (path under tests/data) once per session; cached."""
    cache: dict[str, Validated] = {}

    def get(name: str) -> Validated:
        if name not in cache:
            data = (CORPUS_DIR / name).read_bytes()
            cache[name] = validate_bytes(data, file=name, docs_dir=docs_dir, session=gx_session)
        return cache[name]

    return get
