"""The promotion gate's decision record: plain pydantic models, nothing numeric imported.

``training.evaluate`` computes metrics and takes the decision (numpy, pandas, scikit-learn);
what it decides is read by the flows, the registry tags, the reports and the events, some of
which (the release flow) never compute anything and should not pay those imports.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from training.params import MetricName, TiePolicy

Verdict = Literal["register", "reject"]


class Metrics(BaseModel):
    """Holdout quality of one model."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    rmse: float = Field(ge=0)
    mae: float = Field(ge=0)
    r2: float
    n: int = Field(ge=1)


class Thresholds(BaseModel):
    """The gate settings a decision was taken with, recorded next to it."""

    model_config = ConfigDict(frozen=True)

    min_improvement: float
    quality_floor_metric: MetricName
    quality_floor: float
    tie_policy: TiePolicy
    tie_tolerance: float


class Decision(BaseModel):
    """Outcome of the promotion gate; ``model_dump(mode="json")`` is JSON-ready."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    reason: str
    primary_metric: MetricName
    challenger: Metrics
    champion: Metrics | None
    champion_version: str | None
    improvement: float | None  # relative, positive means the challenger is better
    thresholds: Thresholds
