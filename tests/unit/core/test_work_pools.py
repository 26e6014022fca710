"""MLOPS_WORK_POOL picks where prefect.yaml's deployments run: the ACI choice publishes the
same four deployments to the prefect-azure pool, with prefect-azure's Blob push and pull steps
instead of the local checkout; the local choice publishes prefect.yaml unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.settings import SettingsError, load_settings
from core.work_pools import (
    ACI_POOL,
    CODE_STORAGE_BLOCK,
    LOCAL_POOL,
    PREFECT_YAML,
    flow_run_env,
    prefect_file,
    prefect_spec,
)

SPEC = yaml.safe_load(PREFECT_YAML.read_text())
PUSH = "prefect_azure.deployments.steps.push_to_azure_blob_storage"
PULL = "prefect_azure.deployments.steps.pull_from_azure_blob_storage"
BLOCK = f"{{{{ prefect.blocks.azure-blob-storage-credentials.{CODE_STORAGE_BLOCK} }}}}"


def test_the_local_choice_is_prefect_yaml_itself() -> None:
    assert prefect_spec(LOCAL_POOL) == SPEC
    assert prefect_file(load_settings()) == PREFECT_YAML


def test_the_aci_choice_targets_the_aci_pool_with_blob_push_and_pull() -> None:
    spec = prefect_spec(ACI_POOL)
    assert [d["name"] for d in spec["deployments"]] == [d["name"] for d in SPEC["deployments"]]
    assert {d["work_pool"]["name"] for d in spec["deployments"]} == {ACI_POOL}
    ((push_name, push),) = spec["push"][0].items()
    ((pull_name, pull),) = spec["pull"][0].items()
    assert (push_name, pull_name) == (PUSH, PULL)
    assert push["credentials"] == pull["credentials"] == BLOCK
    assert push["ignore_file"] == ".prefectignore"
    assert pull["container"] == f"{{{{ {push['id']}.container }}}}"
    assert pull["folder"] == f"{{{{ {push['id']}.folder }}}}"
    # Everything else about the deployments is the same (schedules, triggers, limits).
    strip = [{k: v for k, v in d.items() if k != "work_pool"} for d in spec["deployments"]]
    assert strip == [{k: v for k, v in d.items() if k != "work_pool"} for d in SPEC["deployments"]]


def test_the_aci_file_is_written_under_the_state_dir(tmp_path: Path) -> None:
    settings = load_settings(work_pool=ACI_POOL, state_dir=tmp_path)
    path = prefect_file(settings)
    assert path.parent == tmp_path / "deploy"
    assert yaml.safe_load(path.read_text()) == prefect_spec(ACI_POOL)


def test_flow_runs_get_no_connection_string_and_no_local_path() -> None:
    settings = load_settings(blob_connection_string="AccountKey=c2VjcmV0;AccountName=x")
    env = flow_run_env(settings)
    assert "MLOPS_BLOB_CONNECTION_STRING" not in env and "MLOPS_STATE_DIR" not in env
    assert not [v for v in env.values() if "AccountKey" in v]


def test_an_unknown_pool_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="MLOPS_WORK_POOL"):
        load_settings(work_pool="mlops-k8s")
