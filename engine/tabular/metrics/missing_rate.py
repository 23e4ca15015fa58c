"""MissingRateSimilarity: do the two columns have the same share of missing values?"""
from __future__ import annotations

import pandas as pd

from engine.tabular.metrics.base import Goal, Metric


class MissingRateSimilarity(Metric):
    """1 - |real missing share - synthetic missing share| (1 is best)."""

    name = "MissingRateSimilarity"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        return cls.from_rates(float(real_data.isna().mean()), float(synthetic_data.isna().mean()))

    @staticmethod
    def from_rates(real_rate: float, synthetic_rate: float) -> float:
        return float(1.0 - abs(real_rate - synthetic_rate))
