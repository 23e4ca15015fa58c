"""Wasserstein-1 distance on the real column's scale (numeric and datetime columns)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from engine.tabular.metrics.base import Goal, Metric, numeric_values, present, value_counts


def normalised_wasserstein_from_counts(real: pd.Series, synthetic: pd.Series, low: float, span: float) -> float:
    """W1 of two ``value -> count`` Series after mapping values by ``(x - low) / span``."""
    if real.sum() <= 0 or synthetic.sum() <= 0:
        return float("nan")
    span = span or 1.0
    scale = lambda c: (c.index.to_numpy(dtype=float) - low) / span  # noqa: E731
    return float(wasserstein_distance(scale(real), scale(synthetic), real.to_numpy(), synthetic.to_numpy()))


class NormalisedWasserstein(Metric):
    """Earth mover's distance after scaling both columns by the real column's range.

    0 means identical distributions; 0.1 means that on average mass has to move by
    a tenth of the real range. It can exceed 1 when the synthetic values lie far
    outside the real range.
    """

    name = "NormalisedWasserstein"
    goal = Goal.MINIMIZE
    min_value, max_value = 0.0, float("inf")

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        r, s = present(numeric_values(real_data)), present(numeric_values(synthetic_data))
        if len(r) == 0 or len(s) == 0:
            return float("nan")
        return normalised_wasserstein_from_counts(value_counts(r), value_counts(s), float(r.min()), float(np.ptp(r)))
