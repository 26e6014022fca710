"""Decision records for tests: a fixed question (data, parameters) with chosen metrics."""

from __future__ import annotations

from training.decision import ChampionScore, DecisionRecord
from training.evaluate import Metrics
from training.params import TrainingParams

SHA = "0" * 64


def metrics(rmse: float, r2: float = 0.5) -> Metrics:
    return Metrics(rmse=rmse, mae=rmse / 2, r2=r2, n=20)


def decision_record(
    champion: ChampionScore | None, challenger: Metrics | None = None
) -> DecisionRecord:
    """A record of the default parameters on data ``"d" * 64``, challenger RMSE 50 unless given."""
    return DecisionRecord(
        challenger=challenger or metrics(50.0),
        challenger_sha256=SHA,
        champion=champion,
        holdout_fingerprint="h" * 64,
        holdout_rows=20,
        n_train=80,
        data_fingerprint="d" * 64,
        n_rows=100,
        params=TrainingParams().model_dump(mode="json"),
        params_digest=TrainingParams().digest(),
        python_version="3.11.2",
        versions={"scikit-learn": "1.9.1"},
    )
