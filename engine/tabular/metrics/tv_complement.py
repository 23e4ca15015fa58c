"""TVComplement: 1 minus the total variation distance of category frequencies (categorical, boolean)."""
from __future__ import annotations

import pandas as pd

from engine.tabular.metrics.base import MISSING, Goal, Metric, labels, total_variation


class TVComplement(Metric):
    """1 - TVD between the frequencies of the non-missing categories (1 is best).

    As SDMetrics' TVComplement, missing values are dropped before the
    frequencies are taken: the share of missing values is scored by
    ``MissingRateSimilarity`` instead, not twice.
    """

    name = "TVComplement"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        return cls.from_counts(labels(real_data).value_counts(), labels(synthetic_data).value_counts())

    @staticmethod
    def from_counts(real: pd.Series, synthetic: pd.Series) -> float:
        """The score from ``category -> count`` Series (a ``MISSING`` entry is ignored)."""
        real, synthetic = real.drop(MISSING, errors="ignore"), synthetic.drop(MISSING, errors="ignore")
        if real.sum() <= 0 or synthetic.sum() <= 0:
            raise ValueError("a table has no value in this column, so its category frequencies cannot be compared")
        return 1.0 - total_variation(real, synthetic)
