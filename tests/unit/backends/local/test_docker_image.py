"""Scoring image tags and the model file hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from backends.local.docker_image import DockerImageBuilder, file_sha256, image_tag
from core.interfaces import ImageBuilder


@pytest.mark.parametrize(
    ("name", "version", "code", "expected"),
    [
        ("diabetes-ridge", "3", "0123456789abcdef", "mlops/diabetes-ridge:3-0123456789ab"),
        ("diabetes-ridge", "3", "0123456789ab+dirty", "mlops/diabetes-ridge:3-0123456789ab-dirty"),
        ("Diabetes_Ridge", "12", "unknown", "mlops/diabetes_ridge:12-unknown"),
        ("my model!", "1", "abc", "mlops/my-model:1-abc"),
        ("m", "1/2", "abc", "mlops/m:1_2-abc"),
    ],
)
def test_image_tag(name: str, version: str, code: str, expected: str) -> None:
    assert image_tag(name, version, code) == expected


def test_tag_is_never_longer_than_docker_allows() -> None:
    tag = image_tag("m", "9" * 200, "abc").split(":", 1)[1]
    assert len(tag) == 128


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_builder_is_an_image_builder_and_connects_lazily(tmp_path: Path) -> None:
    builder = DockerImageBuilder("unix:///nonexistent/docker.sock", tmp_path)
    assert isinstance(builder, ImageBuilder)
