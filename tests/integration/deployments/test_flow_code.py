"""The flow code's trip through Azure Blob Storage with prefect-azure's own deployment steps
(what the mlops-aci choice runs at publish and at each flow run), against real Azurite: a
project snapshot is pushed without what .prefectignore excludes and pulled back byte for byte."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from prefect_azure.deployments.steps import (
    pull_from_azure_blob_storage,
    push_to_azure_blob_storage,
)

from core.version import REPO_ROOT

pytestmark = pytest.mark.integration

KEPT = {
    "prefect.yaml": "name: prefect-mlops\n",
    "flows/retraining.py": "def retraining() -> None: ...\n",
    "core/settings.py": "PROFILE = 'azure'\n",
    "deployments/work-pools/mlops-aci.json": "{}\n",
    "tests/data/good/batch.csv": "age,sex\n0.03,0.05\n",
}
LEFT_OUT = {
    ".git": "gitdir: /elsewhere/.git/worktrees/x\n",  # a worktree's .git is a file
    ".venv/lib/python3.11/site-packages/x.py": "x = 1\n",
    ".tools/azurite/bin": "#!/bin/sh\n",
    ".mlops/registry/models.db": "sqlite",
    ".env": "MLOPS_BLOB_CONNECTION_STRING=AccountKey=...\n",
    "flows/__pycache__/retraining.cpython-311.pyc": "\x00",
    ".mypy_cache/3.11/x.json": "{}",
}


def snapshot(root: Path) -> None:
    for name, text in {**KEPT, **LEFT_OUT}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / ".prefectignore").write_bytes((REPO_ROOT / ".prefectignore").read_bytes())


def test_a_snapshot_round_trips_without_the_ignored_files(
    azurite: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = azurite.connection_string  # type: ignore[attr-defined]
    container = f"flow-code-{secrets.token_hex(4)}"
    client = ContainerClient.from_connection_string(connection, container)
    client.create_container()
    credentials = {"connection_string": connection}
    try:
        project = tmp_path / "project"
        snapshot(project)
        monkeypatch.chdir(project)
        pushed = push_to_azure_blob_storage(container, "prefect-mlops/abc123", credentials)
        assert pushed == {"container": container, "folder": "prefect-mlops/abc123"}
        names = {blob.name for blob in client.list_blobs()}
        assert names == {f"prefect-mlops/abc123/{n}" for n in [*KEPT, ".prefectignore"]}

        run_dir = tmp_path / "run"
        run_dir.mkdir()
        monkeypatch.chdir(run_dir)
        pulled = pull_from_azure_blob_storage(container, "prefect-mlops/abc123", credentials)
        assert Path(pulled["directory"]) == run_dir
        files = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
        assert files == {*KEPT, ".prefectignore"}
        for name, text in KEPT.items():
            assert (run_dir / name).read_text() == text
    finally:
        client.delete_container()
