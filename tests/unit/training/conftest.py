"""Fixtures shared by the training unit tests: small synthetic frames in schema layout."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from training.schema import COLUMNS, FEATURES, TARGET

FrameFactory = Callable[..., pd.DataFrame]


@pytest.fixture
def make_frame() -> FrameFactory:
    """Return a factory of float64 frames with a linear target plus a little noise."""

    def factory(n: int = 40, seed: int = 0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        features = rng.normal(0.0, 0.05, size=(n, len(FEATURES)))
        weights = np.linspace(-300.0, 300.0, len(FEATURES))
        target = 150.0 + features @ weights + rng.normal(0.0, 5.0, size=n)
        frame = pd.DataFrame(features, columns=list(FEATURES))
        frame[TARGET] = target
        return frame[list(COLUMNS)]

    return factory
