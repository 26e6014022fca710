"""Write the corpus of good and bad data files used by the validation tests.

    python -m tests.data.make_corpus      # from the repository root; rewrites good/, bad/

Deterministic (seeded), so re-running it changes nothing; the generated files and
``corpus.json`` (the verdict each file must get) are committed. Every bad file breaks one
thing, derived from the reference data rather than typed in, so the test that it fails
checks one rule at a time.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from expectations.build_suite import RANGE_MARGIN, reference_frame

ROOT = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)

SEED = 20240501
FLOAT_FORMAT = "%.6g"  # 6 significant digits keep the full 442-row file under 50 KB
TABLE = None


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n").encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _fails(*pairs: tuple[str, str | None], columns: tuple[str, ...] = ()) -> dict:
    """Expected failures: these (expectation, column) pairs at least, and exactly these
    columns among all failures (a file that breaks one rule must not trip others)."""
    return {
        "verdict": "fail",
        "must_fail": [{"expectation": kind, "column": column} for kind, column in pairs],
        "failing_columns": sorted(columns),
    }


def cases(ref: pd.DataFrame) -> dict[str, tuple[Callable[[], bytes], str, dict]]:
    """Each corpus file: how to make it, what it is, and the verdict it must get."""
    rng = np.random.default_rng(SEED)
    batch = ref.sample(150, random_state=SEED).reset_index(drop=True)
    spread = ref.max() - ref.min()

    def wrong_types() -> bytes:
        frame = batch.astype({"bmi": object})
        frame.loc[[7, 42, 99], "bmi"] = "obese"
        return _csv(frame)

    def nan_values() -> bytes:
        frame = batch.copy()
        frame.loc[[3, 30, 60, 90], "bp"] = np.nan
        frame.loc[[10, 110], "target"] = np.nan
        return _csv(frame)

    def out_of_range() -> bytes:
        frame = batch.copy()
        # Twice the suite's margin beyond the reference extremes, two rows only: the mean
        # and standard deviation stay within bounds, the range check alone must catch it.
        frame.loc[[5, 50], "s5"] = ref["s5"].max() + 2 * RANGE_MARGIN * spread["s5"]
        return _csv(frame)

    def distribution_shift() -> bytes:
        frame = batch.copy()
        frame["bmi"] = frame["bmi"] + ref["bmi"].std()
        if frame["bmi"].max() >= ref["bmi"].max() + RANGE_MARGIN * spread["bmi"]:
            raise RuntimeError("shifted bmi left the value range; pick another seed")
        return _csv(frame)

    def not_a_csv() -> bytes:
        png_header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        return png_header + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()

    columns = list(ref.columns)
    shuffled = [columns[i] for i in rng.permutation(len(columns))]
    unreadable = _fails(("file_is_readable_table", TABLE))
    return {
        "good/diabetes_batch_a.csv": (
            lambda: _csv(ref.sample(150, random_state=SEED + 1)),
            "150 reference rows, seeded sample",
            {"verdict": "pass", "rows": 150},
        ),
        "good/diabetes_batch_b.csv": (
            lambda: _csv(ref.sample(frac=1.0, random_state=SEED + 2)),
            "all 442 reference rows, shuffled",
            {"verdict": "pass", "rows": 442},
        ),
        "good/diabetes_batch_c.parquet": (
            lambda: _parquet(ref.sample(100, random_state=SEED + 3)),
            "100 reference rows as Parquet, full float64 precision",
            {"verdict": "pass", "rows": 100},
        ),
        "good/diabetes_reordered_columns.csv": (
            lambda: _csv(ref.sample(80, random_state=SEED + 4)[shuffled]),
            "80 rows with the columns in another order (the column check ignores order)",
            {"verdict": "pass", "rows": 80},
        ),
        "bad/wrong_columns.csv": (
            lambda: _csv(batch.rename(columns={"bmi": "body_mass_index"})),
            "bmi renamed to body_mass_index",
            _fails(("expect_table_columns_to_match_set", TABLE), columns=("bmi",)),
        ),
        "bad/missing_column.csv": (
            lambda: _csv(batch.drop(columns="s6")),
            "column s6 dropped",
            _fails(("expect_table_columns_to_match_set", TABLE), columns=("s6",)),
        ),
        "bad/wrong_types.csv": (
            wrong_types,
            'three bmi values are the string "obese", so the column is text',
            _fails(("expect_column_values_to_be_in_type_list", "bmi"), columns=("bmi",)),
        ),
        "bad/nan_values.csv": (
            nan_values,
            "4 empty bp cells and 2 empty target cells",
            _fails(
                ("expect_column_values_to_not_be_null", "bp"),
                ("expect_column_values_to_not_be_null", "target"),
                columns=("bp", "target"),
            ),
        ),
        "bad/out_of_range.csv": (
            out_of_range,
            "two s5 values beyond the reference range plus twice the margin",
            _fails(("expect_column_values_to_be_between", "s5"), columns=("s5",)),
        ),
        "bad/distribution_shift.csv": (
            distribution_shift,
            "bmi shifted by +1 reference std; every value still inside the value range",
            _fails(("expect_column_mean_to_be_between", "bmi"), columns=("bmi",)),
        ),
        "bad/too_few_rows.csv": (
            lambda: _csv(batch.head(20)),
            "20 rows, below the 50-row floor",
            _fails(("expect_table_row_count_to_be_between", TABLE)),
        ),
        "bad/empty.csv": (lambda: b"", "0 bytes", unreadable),
        "bad/header_only.csv": (lambda: _csv(batch.head(0)), "the header line only", unreadable),
        "bad/not_a_csv.csv": (not_a_csv, "a PNG header and random bytes", unreadable),
    }


def main() -> None:
    """Write every corpus file and ``corpus.json``."""
    manifest = {}
    for name, (make, description, verdict) in cases(reference_frame()).items():
        data = make()
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest[name] = {"description": description, **verdict}
        logger.info("%-40s %6d bytes", name, len(data))
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (ROOT / "corpus.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
