"""Coverage: does the synthetic column reach all the real categories, and the whole real range?"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from engine.tabular.metrics.base import Goal, Metric, numeric_values, present


class CategoryCoverage(Metric):
    """Share of the real (non-missing) categories that appear in the synthetic column (1 is best)."""

    name = "CategoryCoverage"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        return cls.from_categories(real_data.dropna().unique(), synthetic_data.dropna().unique())

    @staticmethod
    def from_categories(real: Iterable[object], synthetic: Iterable[object]) -> float:
        cats = set(real)
        return float(len(cats & set(synthetic)) / len(cats)) if cats else float("nan")


class RangeCoverage(Metric):
    """Share of the real range [min, max] that the synthetic range [min, max] covers (1 is best)."""

    name = "RangeCoverage"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        r, s = present(numeric_values(real_data)), present(numeric_values(synthetic_data))
        if len(r) == 0 or len(s) == 0:
            return float("nan")
        return cls.from_ranges(float(r.min()), float(r.max()), float(s.min()), float(s.max()))

    @staticmethod
    def from_ranges(real_min: float, real_max: float, syn_min: float, syn_max: float) -> float:
        if real_max == real_min:
            return 1.0 if syn_min <= real_min <= syn_max else 0.0
        covered = max(0.0, min(real_max, syn_max) - max(real_min, syn_min)) / (real_max - real_min)
        return float(np.clip(covered, 0.0, 1.0))
