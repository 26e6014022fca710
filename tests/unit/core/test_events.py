"""One module names every project event; the triggers and automations use only those."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from core import events
from core.interfaces import BlobRef, ModelVersion
from training.evaluate import Metrics, decide
from training.params import GateConfig

ROOT = Path(__file__).resolve().parents[3]


def _expected(node: Any) -> list[str]:
    """Every event name under an ``expect:`` key, anywhere in a YAML tree."""
    if isinstance(node, dict):
        found = list(node.get("expect", [])) if isinstance(node.get("expect"), list) else []
        return found + [name for value in node.values() for name in _expected(value)]
    if isinstance(node, list):
        return [name for item in node for name in _expected(item)]
    return []


def test_triggers_and_automations_name_only_project_or_prefect_events() -> None:
    for spec in ("prefect.yaml", "deployments/automations.yaml"):
        names = _expected(yaml.safe_load((ROOT / spec).read_text()))
        assert names, spec
        ours = [n for n in names if not n.startswith("prefect.")]
        assert set(ours) <= set(events.ALL_EVENTS), (spec, ours)


def test_model_registered_names_the_version_and_the_run() -> None:
    version = ModelVersion("m", "3", "file:///r/m/3", "ab" * 32)
    spec = events.model_registered(version, "run-1")
    assert spec.event == events.MODEL_REGISTERED == "mlops.model.registered"
    assert spec.resource["prefect.resource.id"] == "mlops.model.m.3"
    assert spec.resource["mlops.model.version"] == "3"
    assert spec.resource["mlops.model.release"] == "pending"  # the release trigger's
    assert (
        events.model_registered(version, "run-1", released=True).resource["mlops.model.release"]
        == "done"
    )
    assert spec.related == [
        {"prefect.resource.id": "prefect.flow-run.run-1", "prefect.resource.role": "flow-run"}
    ]
    assert spec.payload == {"name": "m", "version": "3", "sha256": "ab" * 32}


def test_challenger_rejected_carries_the_decision() -> None:
    metrics = Metrics(rmse=60.0, mae=50.0, r2=0.3, n=80)
    better = Metrics(rmse=50.0, mae=40.0, r2=0.5, n=80)
    decision = decide(metrics, better, GateConfig(), champion_version="2")
    spec = events.challenger_rejected("m", decision)
    assert spec.event == "mlops.challenger.rejected"
    assert spec.resource["prefect.resource.id"] == "mlops.model.m"
    assert spec.payload["reason"] == decision.reason
    assert spec.payload["decision"]["verdict"] == "reject"


def test_data_quarantined_points_at_the_copy_and_its_source() -> None:
    source = BlobRef(
        "landing", "bad.csv", "memory://datalake/landing/bad.csv", "e", 1, datetime.now(UTC)
    )
    spec = events.data_quarantined(source, "memory://datalake/quarantine/x/bad.csv", "3 failed")
    assert spec.event == "mlops.data.quarantined"
    assert spec.resource["prefect.resource.id"].endswith("/quarantine/x/bad.csv")
    assert spec.related == [{"prefect.resource.id": source.uri, "prefect.resource.role": "source"}]
    assert spec.payload == {
        "file": "bad.csv",
        "reason": "3 failed",
        "quarantined_as": "memory://datalake/quarantine/x/bad.csv",
    }


def test_data_dead_lettered_points_at_the_copy_its_source_and_the_attempts() -> None:
    source = BlobRef("landing", "huge.csv", "memory://datalake/landing/huge.csv", "e", 9)
    where = "memory://datalake/dead-letter/files/x-huge.csv"
    spec = events.data_dead_lettered(source, where, "3 attempt(s) failed; last: boom", 3)
    assert spec.event == events.DATA_DEAD_LETTERED == "mlops.data.dead-lettered"
    assert spec.resource["prefect.resource.id"] == where
    assert spec.related == [{"prefect.resource.id": source.uri, "prefect.resource.role": "source"}]
    assert spec.payload["attempts"] == 3 and spec.payload["dead_lettered_as"] == where


def test_drift_detected_names_the_model_and_what_drifted() -> None:
    spec = events.drift_detected(
        "m", "production", ["bmi"], True, ("2026-12-02T10:00", "2026-12-02T11:00"), ["l.csv"]
    )
    assert spec.event == events.DRIFT_DETECTED == "mlops.drift.detected"
    assert spec.resource["prefect.resource.id"] == events.model_resource_id("m")
    assert spec.resource["prefect.resource.name"] == "m"  # the retraining trigger's model_name
    assert spec.payload["drifted_features"] == ["bmi"] and spec.payload["labelled_data"] == [
        "l.csv"
    ]
