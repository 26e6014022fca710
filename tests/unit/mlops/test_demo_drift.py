"""The demo's drifted traffic and its labels (mlops/demo_drift.py), without a stack."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.interfaces import ModelVersion
from mlops.demo_drift import (
    SHIFTED,
    Scored,
    drifted_traffic,
    holdout_rmse,
    label_csv,
    outcome_range,
)
from training.data import reference_dataset
from training.drift import Thresholds, detect_drift
from training.labels import parse_labels
from training.schema import FEATURES, TARGET


def test_the_traffic_moves_bmi_and_s5_by_a_training_sigma_and_drifts() -> None:
    training = reference_dataset()
    frame = drifted_traffic(training, 300, seed=3)
    assert list(frame.columns) == list(FEATURES) and len(frame) == 300
    unmoved = training[list(FEATURES)].sample(300, replace=True, random_state=3)
    for name in FEATURES:
        moved = frame[name].to_numpy() - unmoved[name].to_numpy()
        expected = training[name].std() if name in SHIFTED else 0.0
        assert moved == pytest.approx([expected] * 300)
    report = detect_drift(training[list(FEATURES)], frame, Thresholds(0.01, 0.2, 200), None)
    assert set(report.drifted_features) == set(SHIFTED)


def test_labels_are_what_the_monitoring_flow_reads() -> None:
    scored = [Scored(f"req-{i}", 150.0 + i) for i in range(50)]
    csv = label_csv(scored, noise_sd=10.0, seed=1, bounds=(0.0, 400.0))
    labels = parse_labels(csv, "labels/demo.csv")
    assert labels["request_id"].tolist() == [s.request_id for s in scored]
    assert set(labels["row"]) == {0}
    noise = labels[TARGET] - pd.Series([s.prediction for s in scored])
    assert 3 < noise.std() < 20 and noise.abs().max() > 0


def test_the_noise_is_the_registered_holdout_error() -> None:
    training = reference_dataset()
    version = ModelVersion(
        "m", "1", "file:///m", "0" * 64, tags={"metrics": '{"rmse": 53.5, "mae": 40, "r2": 0.4}'}
    )
    assert holdout_rmse(version, training) == 53.5
    assert holdout_rmse(None, training) == pytest.approx(training[TARGET].std())


def test_labels_stay_within_what_the_labelled_rows_suite_accepts() -> None:
    # Clean-clone CI once quarantined the demo's labels: prediction + noise went past the
    # suite's target range (about one seed in fifteen). Edge predictions, large noise.
    suite = json.loads(Path("expectations/suites/labelled_rows.json").read_text())
    low, high = next(
        (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == TARGET
    )
    bounds = outcome_range(reference_dataset())
    assert low <= bounds[0] < bounds[1] <= high
    scored = [Scored(f"req-{i}", p) for i, p in enumerate([bounds[0], bounds[1]] * 100)]
    labels = parse_labels(label_csv(scored, noise_sd=80.0, seed=7, bounds=bounds), "l.csv")
    assert labels[TARGET].between(*bounds).all()
    assert labels[TARGET].min() == bounds[0] and labels[TARGET].max() == bounds[1]


def test_drifted_traffic_from_the_diabetes_data_stays_within_the_gates_value_ranges() -> None:
    # The labelled rows of the drift pass the labelled_rows suite only if their features do:
    # shifted once from the diabetes data they do, for any seed (shifting a curated set that
    # already held drifted rows did not: a second demo had its labels quarantined for s5).
    suite = json.loads(Path("expectations/suites/labelled_rows.json").read_text())
    bounds = {
        e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between"
    }
    training = reference_dataset()
    for seed in range(0, 10_000, 97):
        frame = drifted_traffic(training, 300, seed)
        for name in FEATURES:
            assert frame[name].between(*bounds[name]).all(), (seed, name)
