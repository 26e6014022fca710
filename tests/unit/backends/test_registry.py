"""LocalModelRegistry: versions, tags, aliases, integrity and two-process safety."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backends.local.compute import REPO_ROOT
from backends.local.registry import LocalModelRegistry
from core.interfaces import IntegrityError, ModelRegistry, NotFoundError
from training.artifacts import MODEL_FILE

NAME = "diabetes-ridge"


def artifact(tmp_path: Path, content: bytes, extra: str = "{}") -> Path:
    folder = tmp_path / f"art-{hashlib.sha256(content).hexdigest()[:8]}"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(content)
    (folder / "sub" / "metrics.json").write_text(extra)
    return folder


@pytest.fixture
def registry(tmp_path: Path) -> LocalModelRegistry:
    return LocalModelRegistry(tmp_path / "registry")


def test_is_a_model_registry(registry: LocalModelRegistry) -> None:
    assert isinstance(registry, ModelRegistry)


def test_register_numbers_versions_and_copies_the_folder(
    registry: LocalModelRegistry, tmp_path: Path
) -> None:
    v1 = registry.register(NAME, artifact(tmp_path, b"one"), MODEL_FILE, {"k": "a"})
    v2 = registry.register(NAME, artifact(tmp_path, b"two"), MODEL_FILE, {})
    other = registry.register("other-model", artifact(tmp_path, b"x"), MODEL_FILE, {})

    assert (v1.version, v2.version, other.version) == ("1", "2", "1")
    assert v1.sha256 == hashlib.sha256(b"one").hexdigest()
    assert v1.tags == {"k": "a"} and v1.aliases == ()
    assert v1.created_at is not None and v1.created_at.tzinfo is not None
    stored = Path(v2.uri.removeprefix("file://"))
    assert v2.uri.startswith("file:///")
    assert stored == (tmp_path / "registry" / "artifacts" / NAME / "2").resolve()
    assert (stored / MODEL_FILE).read_bytes() == b"two"
    assert (stored / "sub" / "metrics.json").exists()
    assert [v.version for v in registry.list_versions(NAME)] == ["1", "2"]
    assert registry.get(NAME, "2") == v2
    assert not any((tmp_path / "registry" / "artifacts" / ".staging").iterdir())


def test_state_survives_a_new_instance_and_uses_wal(
    registry: LocalModelRegistry, tmp_path: Path
) -> None:
    registry.register(NAME, artifact(tmp_path, b"one"), MODEL_FILE, {"k": "a"})
    again = LocalModelRegistry(tmp_path / "registry")
    assert again.get(NAME, "1").tags == {"k": "a"}
    with sqlite3.connect(tmp_path / "registry" / "registry.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_versions_are_not_found(registry: LocalModelRegistry, tmp_path: Path) -> None:
    registry.register(NAME, artifact(tmp_path, b"one"), MODEL_FILE, {})
    for version in ("2", "0", "abc", "-1", ""):
        with pytest.raises(NotFoundError):
            registry.get(NAME, version)
    with pytest.raises(NotFoundError):
        registry.get("unknown", "1")
    with pytest.raises(NotFoundError):
        registry.set_tags(NAME, "9", {"a": "b"})
    with pytest.raises(NotFoundError):
        registry.download(NAME, "9", tmp_path / "dest")
    assert registry.list_versions("unknown") == []


def test_find_matches_every_given_tag(registry: LocalModelRegistry, tmp_path: Path) -> None:
    tags = [{"data": "d1", "params": "p1"}, {"data": "d1", "params": "p2"}, {"data": "d2"}]
    for i, t in enumerate(tags):
        registry.register(NAME, artifact(tmp_path, bytes([i])), MODEL_FILE, t)

    def found(query: dict[str, str]) -> list[str]:
        return [v.version for v in registry.find(NAME, query)]

    assert found({"data": "d1"}) == ["1", "2"]
    assert found({"data": "d1", "params": "p2"}) == ["2"]
    assert found({"data": "d2", "params": "p1"}) == []
    assert found({"data": "nope"}) == []
    assert found({}) == ["1", "2", "3"]
    assert registry.find("other", {"data": "d1"}) == []


def test_set_tags_adds_and_replaces(registry: LocalModelRegistry, tmp_path: Path) -> None:
    registry.register(NAME, artifact(tmp_path, b"one"), MODEL_FILE, {"a": "1", "b": "2"})
    registry.set_tags(NAME, "1", {"b": "3", "c": "4"})
    assert registry.get(NAME, "1").tags == {"a": "1", "b": "3", "c": "4"}
    assert [v.version for v in registry.find(NAME, {"b": "3"})] == ["1"]


def test_aliases_move_atomically(registry: LocalModelRegistry, tmp_path: Path) -> None:
    for content in (b"one", b"two"):
        registry.register(NAME, artifact(tmp_path, content), MODEL_FILE, {})
    registry.register("other-model", artifact(tmp_path, b"x"), MODEL_FILE, {})
    assert registry.get_alias(NAME, "production") is None

    registry.set_alias(NAME, "production", "1")
    registry.set_alias(NAME, "candidate", "1")
    registry.set_alias("other-model", "production", "1")
    assert registry.get(NAME, "1").aliases == ("candidate", "production")

    registry.set_alias(NAME, "production", "2")
    production = registry.get_alias(NAME, "production")
    assert production is not None and production.version == "2"
    assert production.aliases == ("production",)
    assert registry.get(NAME, "1").aliases == ("candidate",)
    other = registry.get_alias("other-model", "production")
    assert other is not None and other.version == "1"

    registry.delete_alias(NAME, "candidate")
    registry.delete_alias(NAME, "candidate")  # absent: a no-op
    assert registry.get_alias(NAME, "candidate") is None
    with pytest.raises(NotFoundError):
        registry.set_alias(NAME, "qa", "3")


def test_download_verifies_sha256(registry: LocalModelRegistry, tmp_path: Path) -> None:
    version = registry.register(NAME, artifact(tmp_path, b"one"), MODEL_FILE, {})
    folder = registry.download(NAME, "1", tmp_path / "dest")
    assert folder == tmp_path / "dest" / NAME / "1"
    assert (folder / MODEL_FILE).read_bytes() == b"one"
    assert (folder / "sub" / "metrics.json").exists()

    # Someone edits the stored model behind the registry's back.
    stored = Path(version.uri.removeprefix("file://")) / MODEL_FILE
    stored.write_bytes(b"tampered")
    with pytest.raises(IntegrityError) as err:
        registry.download(NAME, "1", tmp_path / "dest2")
    assert version.sha256 in str(err.value)
    assert hashlib.sha256(b"tampered").hexdigest() in str(err.value)
    assert not (tmp_path / "dest2" / NAME / "1").exists()

    stored.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        registry.download(NAME, "1", tmp_path / "dest3")


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "a..b", "x" * 200, "a b"])
def test_rejects_unsafe_names(registry: LocalModelRegistry, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        registry.register(name, artifact(tmp_path, b"one"), MODEL_FILE, {})


def test_rejects_bad_model_files_and_tags(registry: LocalModelRegistry, tmp_path: Path) -> None:
    folder = artifact(tmp_path, b"one")
    with pytest.raises(ValueError):
        registry.register(NAME, folder, "../model.joblib", {})
    with pytest.raises(NotFoundError):
        registry.register(NAME, folder, "missing.joblib", {})
    with pytest.raises(ValueError):
        registry.register(NAME, folder, MODEL_FILE, {"k": 1})  # type: ignore[dict-item]
    registry.register(NAME, folder, MODEL_FILE, {})
    with pytest.raises(ValueError):
        registry.set_alias(NAME, "../prod", "1")
    assert [v.version for v in registry.list_versions(NAME)] == ["1"]


def test_two_processes_registering_at_once_get_distinct_versions(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from backends.local.registry import LocalModelRegistry
        root, worker = Path(sys.argv[1]), sys.argv[2]
        registry = LocalModelRegistry(root / "registry")
        for i in range(8):
            src = root / f"src-{worker}-{i}"
            src.mkdir()
            (src / "model.joblib").write_text(f"{worker}-{i}")
            v = registry.register("m", src, "model.joblib", {"worker": worker, "i": str(i)})
            print(v.version)
        """
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), name],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b", "c")
    ]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]

    versions = [v for out, _ in outputs for v in out.split()]
    assert sorted(versions, key=int) == [str(n) for n in range(1, 25)]
    registry = LocalModelRegistry(tmp_path / "registry")
    for version in registry.list_versions("m"):
        expected = f"{version.tags['worker']}-{version.tags['i']}"
        folder = registry.download("m", version.version, tmp_path / "check")
        assert (folder / MODEL_FILE).read_text() == expected
