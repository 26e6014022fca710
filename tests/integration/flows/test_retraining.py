"""The retraining flow end to end on a real Prefect server, Azurite, subprocess compute and
local registry: good data registers, replays are no-ops, bad data is quarantined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backends import get_backends
from core.lake import Lake
from core.results import RetrainingSummary
from core.settings import Settings
from flows.outcome import result_of
from flows.retraining import retraining
from training.params import GateConfig, TrainingParams

DATA = Path(__file__).resolve().parents[2] / "data"
CORPUS = json.loads((DATA / "corpus.json").read_text())
BAD = sorted(name for name, spec in CORPUS.items() if spec["verdict"] == "fail")


def lake_of(settings: Settings) -> Lake:
    return Lake.of(get_backends(settings).datalake, settings)


def land(settings: Settings, path: Path, name: str | None = None) -> str:
    lake = lake_of(settings)
    lake.ensure()
    ref = lake.datalake.put(settings.landing_container, name or path.name, path.read_bytes())
    return ref.uri


def run(**kwargs: Any) -> tuple[Any, RetrainingSummary]:
    state = retraining(**kwargs, return_state=True)
    summary = result_of(state, RetrainingSummary)
    assert summary is not None, state
    return state, summary


def test_good_data_registers_replay_is_a_no_op_and_more_data_registers_v2(
    settings: Settings,
) -> None:
    registry = get_backends(settings).registry
    lake = lake_of(settings)

    state, summary = run(data_uri=land(settings, DATA / "good" / "diabetes_batch_a.csv"))
    assert state.is_completed(), state.message
    assert summary.outcome == "registered"
    v1 = registry.get(settings.model_name, "1")
    assert "candidate" in v1.aliases
    assert v1.tags["data_fingerprint"] == summary.data_fingerprint
    assert json.loads(v1.tags["decision"])["verdict"] == "register"
    curated = lake.curated_set()
    assert curated is not None and curated.rows == summary.curated_rows
    assert lake.landed() == []  # accepted files leave landing ...
    assert any(
        r.name.startswith("accepted/") for r in lake.datalake.list(settings.curated_container)
    )

    # The same file again: recognised, not merged twice, no new version.
    state, summary = run(data_uri=land(settings, DATA / "good" / "diabetes_batch_a.csv"))
    assert state.is_completed(), state.message
    assert summary.outcome == "up to date"
    assert summary.files[0].result == "replay"
    assert lake.curated_set() == curated
    assert [v.version for v in registry.list_versions(settings.model_name)] == ["1"]

    # More data: a new curated set, a new version; the candidate alias moves to it.
    state, summary = run(data_uri=land(settings, DATA / "good" / "diabetes_batch_b.csv"))
    assert state.is_completed(), state.message
    assert summary.outcome == "registered"
    assert [v.version for v in registry.list_versions(settings.model_name)] == ["1", "2"]
    assert registry.get_alias(settings.model_name, "candidate").version == "2"  # type: ignore[union-attr]
    new_curated = lake.curated_set()
    assert new_curated is not None and new_curated.rows > curated.rows


def test_worse_challenger_is_rejected_and_the_run_completes(settings: Settings) -> None:
    registry = get_backends(settings).registry
    state, _ = run(data_uri=land(settings, DATA / "good" / "diabetes_batch_b.csv"))
    assert state.is_completed(), state.message
    registry.set_alias(settings.model_name, "production", "1")

    # Heavy regularisation makes a clearly worse model on the same data and holdout.
    state, summary = run(
        params=TrainingParams(hyperparameters={"alpha": 500.0}),
        gate=GateConfig(quality_floor=-10.0),
    )
    assert state.is_completed(), state.message
    assert summary.outcome == "challenger rejected"
    assert summary.message.startswith("challenger is not better")
    assert [v.version for v in registry.list_versions(settings.model_name)] == ["1"]


@pytest.mark.parametrize("name", BAD)
def test_bad_file_is_quarantined_with_its_reason_and_nothing_changes(
    settings: Settings, name: str
) -> None:
    expected = CORPUS[name]
    lake = lake_of(settings)
    state, summary = run(data_uri=land(settings, DATA / name, Path(name).name))

    assert state.is_failed()
    assert Path(name).name in state.message
    for failure in expected["must_fail"]:
        if failure["expectation"] == "file_is_readable_table":
            assert "unreadable" in state.message
            continue
        assert failure["expectation"] in state.message
        assert failure["column"] is None or failure["column"] in state.message
    assert summary.outcome == "data rejected"
    assert lake.landed() == []  # it left landing ...
    quarantined = {r.name for r in lake.datalake.list(settings.quarantine_container)}
    data_blob = next(n for n in quarantined if not n.endswith(".reason.json"))
    assert data_blob.endswith(Path(name).name) and f"{data_blob}.reason.json" in quarantined
    original = (DATA / name).read_bytes()
    assert lake.datalake.get(settings.quarantine_container, data_blob)[0] == original  # ... intact
    reason = json.loads(
        lake.datalake.get(settings.quarantine_container, f"{data_blob}.reason.json")[0]
    )
    assert reason["reason"] and reason["source"].endswith(Path(name).name)
    assert lake.curated_set() is None
    assert get_backends(settings).registry.list_versions(settings.model_name) == []
