"""Typed parameters: how to train (``TrainingParams``) and when to promote (``GateConfig``).

Both models forbid unknown keys, so a typo such as ``alpah`` is an error instead of a
silently ignored setting, and both refuse NaN and infinity.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MetricName = Literal["rmse", "mae", "r2"]
TiePolicy = Literal["keep_champion", "prefer_challenger"]

# Length of the hex digest returned by ``TrainingParams.digest``: 64 bits is plenty to tell
# parameter sets apart and stays readable in tags and logs.
_DIGEST_LENGTH = 16


class TrainingParams(BaseModel):
    """Hyper-parameters and split settings of one training run.

    Attributes:
        alpha: Ridge regularisation strength, strictly positive.
        fit_intercept: Whether Ridge fits an intercept.
        holdout_fraction: Share of rows held out for scoring, strictly between 0 and 1.
        seed: Salt of the row hash that assigns rows to the holdout, and the model's
            random_state; in [0, 2**32 - 1].
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    alpha: float = Field(default=0.5, gt=0)
    fit_intercept: bool = True
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    # Bounded because scikit-learn only accepts random_state in [0, 2**32 - 1].
    seed: int = Field(default=42, ge=0, le=2**32 - 1)

    def digest(self) -> str:
        """Return a short, stable identifier of these parameters.

        Returns:
            The first 16 hex characters of the sha256 of the canonical JSON (sorted keys,
            no whitespace), so equal parameters give equal digests on every machine.
        """
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_DIGEST_LENGTH]


class GateConfig(BaseModel):
    """The rules that decide whether a challenger model replaces the champion.

    Attributes:
        primary_metric: Metric compared between challenger and champion.
        min_improvement: Relative improvement the challenger must show on the primary
            metric (0.01 means 1 %); 0 means any strict improvement.
        quality_floor_metric: Metric checked against ``quality_floor``.
        quality_floor: Absolute bar for the challenger: for ``r2`` it must be at least
            this, for ``rmse``/``mae`` at most this.
        tie_policy: What happens when both scores are within ``tie_tolerance``.
        tie_tolerance: Absolute difference under which two scores count as a tie.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    primary_metric: MetricName = "rmse"
    min_improvement: float = Field(default=0.0, ge=0)
    quality_floor_metric: MetricName = "r2"
    quality_floor: float = 0.2
    tie_policy: TiePolicy = "keep_champion"
    tie_tolerance: float = Field(default=1e-9, ge=0)
