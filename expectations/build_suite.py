"""Learn the ``training_data`` expectation suite from the reference data set.

Every number in the suite is derived here from the reference frame (no hand-typed means,
unlike MLOpsPython's data tests) and each expectation's ``meta`` records the rule that
produced it. The generated JSON is committed so changes to the contract show up in review:

    python -m expectations.build_suite          # rewrites expectations/suites/training_data.json

The sample-based bounds (mean, standard deviation) are calibrated for a batch of
``min_rows`` rows drawn from the reference population, which is also the row-count floor:
a smaller batch is rejected outright rather than judged with bounds it was not sized for.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.schema import COLUMNS, DTYPE, FEATURES

logger = logging.getLogger(__name__)

SUITE_NAME = "training_data"
SUITE_PATH = Path(__file__).resolve().parent / "suites" / f"{SUITE_NAME}.json"
SCORING_SUITE_NAME = "scoring_inputs"
SCORING_SUITE_PATH = SUITE_PATH.with_name(f"{SCORING_SUITE_NAME}.json")
# The expectations of the training suite that hold for any single scoring input. The batch
# statistics (mean, standard deviation) and the row floor are left to drift detection, which
# judges them with sample sizes in mind (training/drift.py).
SCORING_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_type_list",
    "expect_column_values_to_be_between",
)
LABELLED_SUITE_NAME = "labelled_rows"
LABELLED_SUITE_PATH = SUITE_PATH.with_name(f"{LABELLED_SUITE_NAME}.json")
# The expectations of the training suite about where a batch sits (its mean and spread)
# and the row floor they are sized for. Labelled rows the monitoring flow joined come from
# live traffic, which may have drifted; that is why they exist, so these are left out.
DISTRIBUTION_TYPES = (
    "expect_table_row_count_to_be_between",
    "expect_column_mean_to_be_between",
    "expect_column_stdev_to_be_between",
)
DEFAULT_MIN_ROWS = 50
REFERENCE_SOURCE = "sklearn load_diabetes"

# Each side of the observed [min, max] is widened by this fraction of the range.
RANGE_MARGIN = 0.25
# Mean bound half-width, in standard errors of a min_rows-row batch.
MEAN_Z = 4.0
# Batch standard deviation allowed between these multiples of the reference one.
STD_LOW, STD_HIGH = 0.5, 1.6
# Numeric dtypes a raw file may arrive with; the trainer casts them to DTYPE. Integers are
# accepted because CSV writers drop ".0" (the target is integral); "float"/"int" cover an
# object column holding Python numbers. Strings, booleans and dates are not accepted.
ACCEPTED_TYPES = (DTYPE, "float32", "int64", "int32", "Float64", "Int64", "float", "int")
SIGNIFICANT_DIGITS = 6


def build_training_suite(
    reference: pd.DataFrame, min_rows: int = DEFAULT_MIN_ROWS, *, source: str = REFERENCE_SOURCE
) -> dict[str, Any]:
    """Build the GX 1.x ExpectationSuite (as a JSON dict) for training data.

    Args:
        reference: The clean reference data set, holding every column of
            ``training.schema.COLUMNS`` with no missing values.
        min_rows: The smallest batch accepted; the mean and standard deviation bounds are
            sized so that a random batch of this many reference rows passes them.
        source: Where ``reference`` came from, recorded in the suite's ``meta``.

    Returns:
        A dict in the GX 1.x suite format (``name``, ``expectations`` with ``type``,
        ``kwargs`` and ``meta``, ``meta``, ``notes``), without ids or a GX version so the
        committed file changes only when the contract does.

    Raises:
        ValueError: The reference lacks a schema column, has missing values or is smaller
            than ``min_rows``.
    """
    missing = [column for column in COLUMNS if column not in reference.columns]
    if missing:
        raise ValueError(f"reference data lacks columns: {missing}")
    frame = reference[list(COLUMNS)].astype(np.dtype(DTYPE))
    if frame.isna().any().any():
        raise ValueError("reference data has missing values")
    if min_rows < 2 or len(frame) < min_rows:
        raise ValueError(f"need 2 <= min_rows <= {len(frame)} reference rows, got {min_rows}")
    learned_from = f"{source}, {len(frame)} rows"
    expectations = [
        _expectation(
            "expect_table_columns_to_match_set",
            {"column_set": list(COLUMNS), "exact_match": True},
            learned_from="training.schema.COLUMNS",
            rule="exactly the schema columns, in any order",
            why=(
                "order-insensitive on purpose: CSV writers and SQL exports reorder columns, "
                "and the trainer selects columns by name, so order carries no meaning; "
                "extra or missing columns do"
            ),
        ),
        _expectation(
            "expect_table_row_count_to_be_between",
            {"min_value": min_rows, "max_value": None},
            learned_from=f"min_rows={min_rows}",
            rule="rows >= min_rows",
            why="the mean and standard deviation bounds are sized for batches of min_rows",
        ),
    ]
    for column in COLUMNS:
        expectations.extend(_column_expectations(frame[column], min_rows, learned_from))
    return {
        "name": SUITE_NAME,
        "expectations": expectations,
        "meta": {
            "learned_from": learned_from,
            "min_rows": min_rows,
            "generated_by": "python -m expectations.build_suite",
            "schema": "training.schema",
        },
        "notes": (
            "Contract for raw training-data files, learned from the reference data set. "
            "Do not edit by hand: change expectations/build_suite.py and regenerate."
        ),
    }


def build_scoring_suite(training_suite: dict[str, Any]) -> dict[str, Any]:
    """The ``scoring_inputs`` suite: the training suite's row-level rules on the features.

    Derived from the committed training suite (one schema source), without the target and
    without batch statistics: a collected window is validated for what each input must be.
    """
    expectations: list[dict[str, Any]] = [
        _expectation(
            "expect_table_columns_to_match_set",
            {"column_set": list(FEATURES), "exact_match": True},
            learned_from="training.schema.FEATURES",
            rule="exactly the schema's features",
            why="the scoring service accepts the features only; the target comes later",
        )
    ]
    for expectation in training_suite["expectations"]:
        column = expectation["kwargs"].get("column")
        if expectation["type"] in SCORING_TYPES and column in FEATURES:
            expectations.append(expectation)
    return {
        "name": SCORING_SUITE_NAME,
        "expectations": expectations,
        "meta": {
            "derived_from": training_suite["name"],
            "generated_by": "python -m expectations.build_suite",
            "schema": "training.schema",
        },
        "notes": (
            "Contract for collected scoring inputs, derived from the training_data suite. "
            "Do not edit by hand: change expectations/build_suite.py and regenerate."
        ),
    }


def build_labelled_suite(training_suite: dict[str, Any]) -> dict[str, Any]:
    """The ``labelled_rows`` suite: the training suite without its distribution bounds.

    For the labelled rows the monitoring flow writes to landing (collected inputs joined
    to late ground truth). The schema, types, missing values, value ranges and target rules
    stay the training suite's; the mean, standard deviation and row-count bounds go: drifted
    traffic is what a drift-triggered retraining must learn from, and its batches can be
    small. Derived from the committed training suite so the two cannot disagree on the rest.
    """
    expectations = [
        expectation
        for expectation in training_suite["expectations"]
        if expectation["type"] not in DISTRIBUTION_TYPES
    ]
    return {
        "name": LABELLED_SUITE_NAME,
        "expectations": expectations,
        "meta": {
            "derived_from": training_suite["name"],
            "without": list(DISTRIBUTION_TYPES),
            "generated_by": "python -m expectations.build_suite",
            "schema": "training.schema",
        },
        "notes": (
            "Contract for labelled rows written to landing by the monitoring flow (blob "
            "metadata origin=labels), derived from the training_data suite without its "
            "distribution bounds. Do not edit by hand: change expectations/build_suite.py "
            "and regenerate."
        ),
    }


def _column_expectations(values: pd.Series, min_rows: int, learned_from: str) -> list[dict]:
    column = str(values.name)
    low, high = float(values.min()), float(values.max())
    margin = RANGE_MARGIN * (high - low)
    mean = float(values.mean())
    std = float(values.std(ddof=1))  # GX's column stdev is the sample (ddof=1) one
    std_error = std / math.sqrt(min_rows)
    # Relative standard deviation of a min_rows-row sample's std: sqrt((kurtosis - 1) / 4n).
    centred = values.to_numpy() - mean
    kurtosis = float(np.mean(centred**4) / np.mean(centred**2) ** 2)
    std_rel_sd = math.sqrt(max(kurtosis - 1.0, 0.0) / (4 * min_rows))
    stats = {"reference_min": _round(low), "reference_max": _round(high)}
    return [
        _expectation(
            "expect_column_values_to_not_be_null",
            {"column": column},
            learned_from=learned_from,
            rule="no missing values (reference has none)",
            why="training refuses rows with missing values and the pipeline does not impute",
        ),
        _expectation(
            "expect_column_values_to_be_in_type_list",
            {"column": column, "type_list": list(ACCEPTED_TYPES)},
            learned_from=f"training.schema.DTYPE={DTYPE}",
            rule="a numeric dtype castable to the schema dtype",
            why="a stray string turns the whole CSV column into text",
        ),
        _expectation(
            "expect_column_values_to_be_between",
            {
                "column": column,
                "min_value": _round(low - margin),
                "max_value": _round(high + margin),
            },
            learned_from=learned_from,
            rule=f"[min - {RANGE_MARGIN}·range, max + {RANGE_MARGIN}·range] of the reference",
            why="catches unit and scaling mistakes while leaving room for unseen patients",
            **stats,
        ),
        _expectation(
            "expect_column_mean_to_be_between",
            {
                "column": column,
                "min_value": _round(mean - MEAN_Z * std_error, std),
                "max_value": _round(mean + MEAN_Z * std_error, std),
            },
            learned_from=learned_from,
            rule=f"mean ± {MEAN_Z:g}·σ/√min_rows",
            why=(
                f"a random batch of {min_rows} reference rows falls outside with probability "
                f"~{math.erfc(MEAN_Z / math.sqrt(2)):.0e} per column (normal tail); a shift "
                f"of {MEAN_Z / math.sqrt(min_rows):.2f}σ or more is out"
            ),
            reference_mean=_round(mean, std),
            reference_std=_round(std),
        ),
        _expectation(
            "expect_column_stdev_to_be_between",
            {
                "column": column,
                "min_value": _round(STD_LOW * std),
                "max_value": _round(STD_HIGH * std),
            },
            learned_from=learned_from,
            rule=f"{STD_LOW:g}·σ .. {STD_HIGH:g}·σ",
            why=(
                f"the std of a {min_rows}-row batch varies by ~{std_rel_sd:.2f}·σ (from the "
                "reference kurtosis), so these bounds are >= 5 such deviations away; they "
                "catch constant-filled, collapsed or rescaled columns"
            ),
            reference_std=_round(std),
            reference_kurtosis=_round(kurtosis),
        ),
    ]


def _expectation(type_: str, kwargs: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs, "meta": meta}


def _round(value: float, scale: float | None = None) -> float:
    """Round to six significant digits of ``scale`` (default: of ``value``).

    Readable JSON, far below the resolution of any margin. A mean of 1e-17 rounded at the
    scale of its standard deviation becomes 0.0 instead of noise.
    """
    if scale is None or scale == 0:
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(scale)))
    return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def reference_frame() -> pd.DataFrame:
    """The reference data set: sklearn's diabetes data with the schema's column names."""
    from training.data import reference_dataset

    return reference_dataset()


def suite_json(suite: dict[str, Any]) -> str:
    """Serialise a suite the way it is committed: indented, sorted keys, final newline."""
    return json.dumps(suite, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_suite(path: Path = SUITE_PATH, min_rows: int = DEFAULT_MIN_ROWS) -> Path:
    """Learn the suite from the reference data and write it to ``path``, and the scoring
    and labelled-rows suites derived from it beside it."""
    suite = build_training_suite(reference_frame(), min_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(suite_json(suite), encoding="utf-8")
    scoring = path.with_name(SCORING_SUITE_PATH.name)
    scoring.write_text(suite_json(build_scoring_suite(suite)), encoding="utf-8")
    labelled = path.with_name(LABELLED_SUITE_PATH.name)
    labelled.write_text(suite_json(build_labelled_suite(suite)), encoding="utf-8")
    logger.info(
        "wrote %s (%d expectations), %s and %s",
        path, len(suite["expectations"]), scoring, labelled,
    )  # fmt: skip
    return path


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_suite()
