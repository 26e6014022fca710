"""What a registered version records: the estimator among its tags."""

from __future__ import annotations

import json

from tasks.registry import registration_tags
from training.evaluate import GateConfig, Metrics, decide
from training.params import TrainingParams


def test_tags_record_the_estimator_and_its_resolved_hyperparameters() -> None:
    params = TrainingParams(estimator="random_forest", hyperparameters={"n_estimators": 30})
    decision = decide(Metrics(rmse=50.0, mae=40.0, r2=0.5, n=80), None, GateConfig())
    tags = registration_tags("f" * 64, "landing/a.csv", params, decision, "job-1", "run-1")

    assert tags["estimator"] == "random_forest"
    assert json.loads(tags["params"]) == params.model_dump(mode="json")
    assert json.loads(tags["params"])["hyperparameters"] == {
        "n_estimators": 30,
        "max_depth": None,
        "min_samples_leaf": 1,
    }
    assert tags["params_digest"] == params.digest()
    assert all(isinstance(value, str) for value in tags.values())
