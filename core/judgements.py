"""Remembered gate decisions: a challenger rejected on this data with these parameters.

A rejection registers nothing, so without a record every scheduled run and every duplicate
event on unchanged data would train the same challenger again, lose again and notify again.
The record lives beside the curated set it judged:
``curated/decisions/<data fingerprint[:16]>-<params digest>.json``. It holds the champion
and the gate it was judged against: a new champion or another gate is a new question.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.interfaces import NotFoundError
from core.lake import Lake
from training.gate_models import Decision

PREFIX = "decisions/"


@dataclass(frozen=True)
class Judgement:
    """The gate's decision on a challenger trained on one data set with one parameter set."""

    fingerprint: str
    params_digest: str
    gate: dict[str, Any]  # GateConfig.model_dump(mode="json")
    decision: Decision
    decided_at: str = ""

    @property
    def champion_version(self) -> str | None:
        return self.decision.champion_version


def _name(fingerprint: str, params_digest: str) -> str:
    return f"{PREFIX}{fingerprint[:16]}-{params_digest}.json"


def find(lake: Lake, fingerprint: str, params_digest: str) -> Judgement | None:
    """The remembered decision on this data with these parameters, if any."""
    try:
        blob, _ = lake.datalake.get(lake.curated, _name(fingerprint, params_digest))
    except NotFoundError:
        return None
    record = json.loads(blob)
    return Judgement(
        fingerprint=record["fingerprint"],
        params_digest=record["params_digest"],
        gate=record["gate"],
        decision=Decision.model_validate(record["decision"]),
        decided_at=record.get("decided_at", ""),
    )


def remember(lake: Lake, judgement: Judgement) -> Judgement:
    """Write the record (overwriting an older decision on the same question)."""
    decided_at = judgement.decided_at or datetime.now(UTC).isoformat(timespec="seconds")
    record = {
        "fingerprint": judgement.fingerprint,
        "params_digest": judgement.params_digest,
        "gate": judgement.gate,
        "decision": judgement.decision.model_dump(mode="json"),
        "decided_at": decided_at,
    }
    lake.datalake.put(
        lake.curated,
        _name(judgement.fingerprint, judgement.params_digest),
        json.dumps(record, indent=2).encode(),
        metadata={"kind": "decision"},
    )
    return Judgement(**{**judgement.__dict__, "decided_at": decided_at})
