"""The model folder's names, the model-file hash and the golden reader."""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from training import artifacts
from training.artifacts import (
    GOLDEN_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    Golden,
    GoldenError,
    read_golden,
    sha256_file,
)


def test_names() -> None:
    assert (MODEL_FILE, RUN_FILE, METRICS_FILE, GOLDEN_FILE) == (
        "model.joblib",
        "run.json",
        "metrics.json",
        "golden.json",
    )


def test_only_the_standard_library() -> None:
    # It ships in the scoring image, which installs only what the model needs.
    tree = ast.parse(Path(artifacts.__file__).read_text())
    imported = {
        ((node.module or "") if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - {"__future__"} <= sys.stdlib_module_names, imported


def test_sha256_file_reads_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / MODEL_FILE
    content = b"x" * 3_000_000  # more than one chunk
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "absent")


def _golden(tmp_path: Path, content: Any) -> Path:
    text = content if isinstance(content, str) else json.dumps(content)
    (tmp_path / GOLDEN_FILE).write_text(text)
    return tmp_path


def test_read_golden(tmp_path: Path) -> None:
    folder = _golden(tmp_path, {"data": [[1, 2.5], [3, 4]], "predictions": [10, 20.5]})
    golden = read_golden(folder)
    assert golden == Golden([[1.0, 2.5], [3.0, 4.0]], [10.0, 20.5])
    assert all(isinstance(v, float) for v in golden.predictions)
    assert read_golden(folder, 2) == golden
    assert golden.to_dict() == {"data": [[1.0, 2.5], [3.0, 4.0]], "predictions": [10.0, 20.5]}


def test_read_golden_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_golden(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read it as JSON"),
        ([1, 2], "expected an object"),
        ({"data": [[1.0]]}, "non-empty lists"),
        ({"data": [], "predictions": []}, "non-empty lists"),
        ({"data": [[1.0], [2.0]], "predictions": [1.0]}, "2 rows but 1 predictions"),
        ({"data": [1.0], "predictions": [1.0]}, "must be a list of numbers"),
        ({"data": [[1.0], [1.0, 2.0]], "predictions": [1.0, 2.0]}, r"widths \[1, 2\]"),
        ({"data": [["a"]], "predictions": [1.0]}, "'a' is not a finite number"),
        ({"data": [[True]], "predictions": [1.0]}, "True is not a finite number"),
        ({"data": [[1.0]], "predictions": [None]}, "None is not a finite number"),
        ('{"data": [[NaN]], "predictions": [1.0]}', "nan is not a finite number"),
    ],
)
def test_read_golden_malformed(tmp_path: Path, content: Any, message: str) -> None:
    folder = _golden(tmp_path, content)
    with pytest.raises(GoldenError, match=message) as caught:
        read_golden(folder)
    assert str(caught.value).startswith(f"{folder / GOLDEN_FILE} is malformed: ")


def test_read_golden_checks_the_width_asked_for(tmp_path: Path) -> None:
    folder = _golden(tmp_path, {"data": [[1.0, 2.0]], "predictions": [3.0]})
    with pytest.raises(GoldenError, match=r"widths \[2\], expected 10"):
        read_golden(folder, 10)
