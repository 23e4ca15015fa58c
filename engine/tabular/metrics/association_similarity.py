"""Cramér's V association, and how well the synthetic table keeps it."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats.contingency import association

from engine.tabular.metrics.base import Goal, Metric
from engine.tabular.metrics.contingency_similarity import discretise, joint_counts


def cramers_v(table: np.ndarray) -> float:
    """Cramér's V (no bias correction) of a contingency table of counts, in [0, 1]; labels never seen are dropped."""
    # scipy wants whole counts (merged counts are floats holding whole numbers) and no empty row or column.
    table = np.rint(table).astype(np.int64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.sum() == 0 or min(table.shape) < 2:
        return float("nan")
    return float(association(table, method="cramer"))


def cramers_v_from_counts(joint: pd.Series) -> float:
    """Cramér's V of a joint ``(a, b) -> count`` Series."""
    return cramers_v(joint.unstack(fill_value=0.0).to_numpy())


class AssociationSimilarity(Metric):
    """1 - |Cramér's V real - Cramér's V synthetic| (1 is best); missing values count as a category."""

    name = "AssociationSimilarity"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.DataFrame, synthetic_data: pd.DataFrame, continuous_columns: Sequence[str] = ()) -> float:
        a, b = real_data.columns[:2]
        ra, sa = discretise(real_data[a], synthetic_data[a], a in continuous_columns)
        rb, sb = discretise(real_data[b], synthetic_data[b], b in continuous_columns)
        return cls.from_values(cramers_v_from_counts(joint_counts(ra, rb)), cramers_v_from_counts(joint_counts(sa, sb)))

    @staticmethod
    def from_values(real_v: float, synthetic_v: float) -> float:
        if np.isnan(real_v) or np.isnan(synthetic_v):
            return float("nan")
        return float(1.0 - abs(real_v - synthetic_v))
