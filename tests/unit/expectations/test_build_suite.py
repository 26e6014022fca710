"""The learned suite: no drift from the committed JSON, valid GX, calibrated bounds."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from expectations.build_suite import (
    DEFAULT_MIN_ROWS,
    SUITE_NAME,
    SUITE_PATH,
    build_training_suite,
    suite_json,
)
from training.schema import COLUMNS, FEATURES

SUBSAMPLES = 200


@pytest.fixture(scope="module")
def suite(reference: pd.DataFrame) -> dict[str, Any]:
    return build_training_suite(reference)


def _bounds(suite: dict[str, Any], kind: str) -> dict[str, tuple[float, float]]:
    return {
        item["kwargs"]["column"]: (item["kwargs"]["min_value"], item["kwargs"]["max_value"])
        for item in suite["expectations"]
        if item["type"] == kind
    }


def numeric_failures(suite: dict[str, Any], frame: pd.DataFrame) -> set[tuple[str, str]]:
    """The suite's value-range, mean and stdev checks, evaluated the way GX does (ddof=1)."""
    failed = set()
    statistics = {
        "expect_column_values_to_be_between": lambda values: (values.min(), values.max()),
        "expect_column_mean_to_be_between": lambda values: (values.mean(), values.mean()),
        "expect_column_stdev_to_be_between": lambda values: (values.std(), values.std()),
    }
    for kind, statistic in statistics.items():
        for column, (low, high) in _bounds(suite, kind).items():
            smallest, largest = statistic(frame[column])
            if not low <= smallest <= largest <= high:
                failed.add((kind, column))
    return failed


def test_committed_suite_matches_the_builder(suite: dict[str, Any]) -> None:
    committed = SUITE_PATH.read_text(encoding="utf-8")
    assert json.loads(committed) == suite, "run: python -m expectations.build_suite"
    assert committed == suite_json(suite)


def test_suite_is_valid_gx(suite: dict[str, Any]) -> None:
    from great_expectations.core.expectation_suite import ExpectationSuite

    gx_suite = ExpectationSuite(**suite)
    assert gx_suite.name == SUITE_NAME
    assert len(gx_suite.expectations) == len(suite["expectations"]) == 2 + 5 * len(COLUMNS)


def test_every_expectation_records_its_derivation(suite: dict[str, Any]) -> None:
    for item in suite["expectations"]:
        assert {"learned_from", "rule", "why"} <= item["meta"].keys(), item["type"]
    columns = {
        item["kwargs"]["column"] for item in suite["expectations"] if "column" in item["kwargs"]
    }
    assert columns == set(COLUMNS)


def test_column_set_is_exact_and_from_the_schema(suite: dict[str, Any]) -> None:
    [column_set] = [
        item
        for item in suite["expectations"]
        if item["type"] == "expect_table_columns_to_match_set"
    ]
    assert column_set["kwargs"] == {"column_set": list(COLUMNS), "exact_match": True}
    assert "order" in column_set["meta"]["why"]


def test_bounds_are_learned_from_the_reference(reference: pd.DataFrame) -> None:
    doubled = reference.assign(target=reference["target"] * 2)
    original = _bounds(build_training_suite(reference), "expect_column_mean_to_be_between")
    changed = _bounds(build_training_suite(doubled), "expect_column_mean_to_be_between")
    assert changed["target"] == pytest.approx(tuple(2 * bound for bound in original["target"]))
    assert changed["bmi"] == original["bmi"]


def test_row_floor_follows_min_rows(reference: pd.DataFrame) -> None:
    wide = build_training_suite(reference, min_rows=200)
    [rows] = [
        i for i in wide["expectations"] if i["type"] == "expect_table_row_count_to_be_between"
    ]
    assert rows["kwargs"]["min_value"] == 200
    narrow = _bounds(wide, "expect_column_mean_to_be_between")["bmi"]
    assert (
        narrow[1]
        < _bounds(build_training_suite(reference), "expect_column_mean_to_be_between")["bmi"][1]
    )


@pytest.mark.parametrize(
    "broken",
    [
        lambda frame: frame.drop(columns="s3"),
        lambda frame: frame.assign(bmi=np.where(frame.index == 0, np.nan, frame["bmi"])),
        lambda frame: frame.head(10),
    ],
    ids=["missing-column", "missing-value", "too-small"],
)
def test_builder_refuses_a_bad_reference(reference: pd.DataFrame, broken: Any) -> None:
    with pytest.raises(ValueError):
        build_training_suite(broken(reference))


def test_random_min_rows_batches_pass(suite: dict[str, Any], reference: pd.DataFrame) -> None:
    rejected = [
        seed
        for seed in range(SUBSAMPLES)
        if numeric_failures(suite, reference.sample(DEFAULT_MIN_ROWS, random_state=seed))
    ]
    assert len(rejected) / SUBSAMPLES < 0.02, f"false rejects for seeds {rejected}"


@pytest.mark.parametrize("column", [*FEATURES, "target"])
def test_a_mean_shift_of_0_6_sigma_fails_and_0_5_passes(
    suite: dict[str, Any], reference: pd.DataFrame, column: str
) -> None:
    sigma = reference[column].std()
    kind = "expect_column_mean_to_be_between"
    shifted = reference.assign(**{column: reference[column] + 0.6 * sigma})
    assert (kind, column) in numeric_failures(suite, shifted)
    slightly = reference.assign(**{column: reference[column] - 0.5 * sigma})
    assert (kind, column) not in numeric_failures(suite, slightly)


def test_rescaled_or_constant_columns_fail_the_stdev_check(
    suite: dict[str, Any], reference: pd.DataFrame
) -> None:
    kind = "expect_column_stdev_to_be_between"
    constant = reference.assign(s1=reference["s1"].mean())
    assert (kind, "s1") in numeric_failures(suite, constant)
    doubled = reference.assign(s1=reference["s1"] * 2)
    assert (kind, "s1") in numeric_failures(suite, doubled)


def test_pandas_evaluation_agrees_with_gx(
    suite: dict[str, Any], reference: pd.DataFrame, tmp_path: Any
) -> None:
    """The pure-pandas evaluator above is what the subsample test trusts; check it on GX."""
    from expectations.validate import validate_frame

    shifted = reference.assign(bp=reference["bp"] + 0.6 * reference["bp"].std())
    report = validate_frame(shifted, file="shifted.csv", docs_dir=tmp_path)
    assert (
        report.failed()
        == numeric_failures(suite, shifted)
        == {("expect_column_mean_to_be_between", "bp")}
    )


def test_the_committed_scoring_suite_is_derived_from_the_training_suite() -> None:
    from expectations.build_suite import SCORING_SUITE_PATH, build_scoring_suite
    from training.schema import FEATURES

    training_suite = json.loads(SUITE_PATH.read_text(encoding="utf-8"))
    derived = build_scoring_suite(training_suite)
    assert SCORING_SUITE_PATH.read_text(encoding="utf-8") == suite_json(derived)
    columns = {e["kwargs"].get("column") for e in derived["expectations"]} - {None}
    assert columns == set(FEATURES)  # the features only: no target
    kinds = {e["type"] for e in derived["expectations"]}
    assert "expect_column_mean_to_be_between" not in kinds  # drift judges the statistics


def test_the_committed_labelled_suite_is_the_training_suite_without_distribution_bounds() -> None:
    from expectations.build_suite import LABELLED_SUITE_PATH, build_labelled_suite

    training_suite = json.loads(SUITE_PATH.read_text(encoding="utf-8"))
    derived = build_labelled_suite(training_suite)
    assert LABELLED_SUITE_PATH.read_text(encoding="utf-8") == suite_json(derived)
    kept = [e for e in training_suite["expectations"] if e in derived["expectations"]]
    assert kept == derived["expectations"]  # nothing added or changed, order kept
    dropped = {e["type"] for e in training_suite["expectations"]} - {
        e["type"] for e in derived["expectations"]
    }
    assert dropped == {
        "expect_table_row_count_to_be_between",
        "expect_column_mean_to_be_between",
        "expect_column_stdev_to_be_between",
    }
    columns = {e["kwargs"].get("column") for e in derived["expectations"]} - {None}
    assert columns == set(COLUMNS)  # the target's rules too
    for kind in (
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_between",
    ):
        assert {e["kwargs"]["column"] for e in derived["expectations"] if e["type"] == kind} == set(
            COLUMNS
        ), kind


def test_the_labelled_suite_takes_drifted_rows_but_not_broken_ones(
    reference: pd.DataFrame, tmp_path: Any
) -> None:
    """On GX: rows shifted beyond the training suite's mean bounds pass ``labelled_rows``;
    a value out of range or missing fails it, as it fails the training suite."""
    from expectations.build_suite import LABELLED_SUITE_PATH
    from expectations.validate import validate_frame

    def check(frame: pd.DataFrame, suite_path: Any = None) -> set[tuple[str, str | None]]:
        report = validate_frame(frame, file="f.csv", docs_dir=tmp_path, suite_path=suite_path)
        return report.failed()

    shifted = reference.assign(bmi=reference["bmi"] + reference["bmi"].std())
    assert ("expect_column_mean_to_be_between", "bmi") in check(shifted)
    assert check(shifted, LABELLED_SUITE_PATH) == set()
    broken = shifted.copy()
    broken.loc[0, "target"] = 5000.0
    broken.loc[1, "s5"] = np.nan
    assert check(broken, LABELLED_SUITE_PATH) == {
        ("expect_column_values_to_be_between", "target"),
        ("expect_column_values_to_not_be_null", "s5"),
    }
