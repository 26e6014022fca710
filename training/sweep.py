"""A hyperparameter sweep: trials of one estimator, and the rule that picks the best one.

Each trial is an ordinary training job with its own parameters (it scores the champion too
and writes its decision record); the trial whose record has the best primary metric becomes
the challenger, and the promotion gate then judges it like any other.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from training.decision import DecisionRecord
from training.evaluate import LOWER_IS_BETTER
from training.params import MetricName, TrainingParams, describe


class SweepConfig(BaseModel):
    """The grid to search and how many trials run at once.

    Attributes:
        space: Hyperparameter name -> the values to try (each list non-empty). The trials are
            the grid's points in sorted key order, on top of the base parameters.
        max_trials: At most this many points of the grid are tried (the first ones).
        max_parallel: Trials running at the same time (local processes, or Azure ML jobs
            on the cluster, which queues what its nodes cannot take).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: dict[str, list[Any]] = Field(min_length=1)
    max_trials: int = Field(default=8, ge=1, le=64)
    max_parallel: int = Field(default=2, ge=1, le=16)

    def trials(self, base: TrainingParams) -> list[TrainingParams]:
        """The parameters of each trial: the base with one grid point's hyperparameters.

        Raises:
            ValueError: A value list is empty, or a point is not valid for the estimator
                (the message names the trial and the problem).
        """
        empty = [key for key, values in self.space.items() if not values]
        if empty:
            raise ValueError(f"sweep values of {', '.join(empty)} are empty")
        keys = sorted(self.space)
        points = itertools.islice(
            itertools.product(*(self.space[key] for key in keys)), self.max_trials
        )
        trials = []
        for number, point in enumerate(points, start=1):
            raw = base.model_dump(mode="json")
            raw["hyperparameters"] = {
                **raw["hyperparameters"],
                **dict(zip(keys, point, strict=True)),
            }
            try:
                trials.append(TrainingParams.model_validate(raw))
            except ValidationError as exc:
                raise ValueError(f"sweep trial {number}: {describe(exc)}") from None
        return trials


def best_trial(records: Sequence[DecisionRecord], metric: MetricName) -> int:
    """The index of the record whose challenger scores best on ``metric`` (first on ties).

    Raises:
        ValueError: No records.
    """
    if not records:
        raise ValueError("no trial completed")
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    return min(range(len(records)), key=lambda i: sign * getattr(records[i].challenger, metric))
