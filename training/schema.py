"""The data schema: feature names, target and dtypes. One source of truth.

Training, the Great Expectations suites and the scoring service all read this module.
The columns are those of scikit-learn's ``load_diabetes`` (features mean-centred and
scaled, target a disease-progression score), the data set of the reference architecture.
"""

from __future__ import annotations

FEATURES: tuple[str, ...] = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
TARGET: str = "target"
COLUMNS: tuple[str, ...] = (*FEATURES, TARGET)
DTYPE: str = "float64"
N_FEATURES: int = len(FEATURES)
