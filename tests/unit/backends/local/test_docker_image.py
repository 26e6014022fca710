"""Scoring image tags and the build context."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backends.local.docker_image import TRAINING_MODULES, DockerImageBuilder, image_tag
from backends.local.wheelhouse import LOCK_FILE, Wheelhouse
from core.interfaces import ImageBuilder
from training.artifacts import MODEL_FILE

SHA_A, SHA_B = "a1" * 32, "b2" * 32


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
    tag = image_tag("m", "9" * 200, "abc", telemetry=True).split(":", 1)[1]
    assert len(tag) == 128 and tag.endswith("-otel")


def test_a_telemetry_image_has_its_own_tag() -> None:
    plain = image_tag("diabetes-ridge", "3", "0123456789ab+dirty")
    assert image_tag("diabetes-ridge", "3", "0123456789ab+dirty", telemetry=True) == (
        plain + "-otel"
    )


def test_a_long_version_is_cut_never_what_tells_images_apart() -> None:
    tag = image_tag("m", "9" * 200, "0123456789abcdef+dirty", SHA_A).split(":", 1)[1]
    assert len(tag) == 128 and tag.endswith(f"-{SHA_A[:8]}-0123456789ab-dirty")
    tag = image_tag("m", "9" * 200, "0123456789abcdef", SHA_A, telemetry=True).split(":", 1)[1]
    assert len(tag) == 128 and tag.endswith(f"-{SHA_A[:8]}-0123456789ab-otel")


def test_two_stacks_version_one_of_different_models_get_different_tags() -> None:
    # Two stacks (registries under different roots) on one Docker engine: each has a
    # version 1 of diabetes-ridge, trained on its own data. The tag names the model file.
    a = image_tag("diabetes-ridge", "1", "0123456789abcdef", SHA_A)
    b = image_tag("diabetes-ridge", "1", "0123456789abcdef", SHA_B)
    assert a == f"mlops/diabetes-ridge:1-{SHA_A[:8]}-0123456789ab"
    assert a != b


def test_context_holds_the_training_modules_scoring_imports(tmp_path: Path) -> None:
    wheels = Wheelhouse(tmp_path / "wheels", ("numpy",), ("numpy==2.0.0",))
    wheels.path.mkdir()
    (wheels.path / LOCK_FILE).write_text(wheels.lock_text)
    model = tmp_path / "model"
    model.mkdir()
    (model / MODEL_FILE).write_bytes(b"m")
    context = tmp_path / "context"
    context.mkdir()

    DockerImageBuilder._assemble(context, wheels, model)

    app = context / "app"
    assert sorted(p.name for p in (app / "training").iterdir()) == sorted(TRAINING_MODULES)
    assert "artifacts.py" in TRAINING_MODULES
    assert (context / "model" / MODEL_FILE).read_bytes() == b"m"
    # What the image runs: scoring imports, with only app/ on the path, what it needs.
    probe = "import scoring.deps, training.artifacts, training.schema"
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(app)},
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_builder_is_an_image_builder_and_connects_lazily(tmp_path: Path) -> None:
    builder = DockerImageBuilder("unix:///nonexistent/docker.sock", tmp_path)
    assert isinstance(builder, ImageBuilder)
