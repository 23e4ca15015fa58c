"""TVComplement: 1 minus the total variation distance of category frequencies (categorical, boolean)."""
from __future__ import annotations

import pandas as pd

from engine.evaluation.metrics.base import Goal, Metric, labels, total_variation


class TVComplement(Metric):
    """1 - TVD between the category frequencies, missing values counted as a category (1 is best)."""

    name = "TVComplement"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        return cls.from_counts(labels(real_data).value_counts(), labels(synthetic_data).value_counts())

    @staticmethod
    def from_counts(real: pd.Series, synthetic: pd.Series) -> float:
        """The score from ``category -> count`` Series (missing under ``MISSING``)."""
        return 1.0 - total_variation(real, synthetic)
