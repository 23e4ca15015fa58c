"""KSComplement: 1 minus the two-sample Kolmogorov-Smirnov statistic (numeric and datetime columns)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.tabular.metrics.base import Goal, Metric, numeric_values, present, value_counts


def ks_statistic_from_counts(real: pd.Series, synthetic: pd.Series) -> float:
    """The KS statistic of two weighted samples given as ``value -> count`` Series.

    The largest gap between the two empirical CDFs over the union of values: the
    exact statistic (scipy's ``ks_2samp``), computed from counts so that merged
    per-block counts give the same number as the whole columns.
    """
    if real.sum() <= 0 or synthetic.sum() <= 0:
        return float("nan")
    grid = np.union1d(real.index.to_numpy(dtype=float), synthetic.index.to_numpy(dtype=float))
    cdf_r = np.cumsum(real.reindex(grid, fill_value=0.0).to_numpy()) / real.sum()
    cdf_s = np.cumsum(synthetic.reindex(grid, fill_value=0.0).to_numpy()) / synthetic.sum()
    return float(np.abs(cdf_r - cdf_s).max())


def ks_statistic_from_histograms(real: np.ndarray, synthetic: np.ndarray) -> tuple[float, float]:
    """KS statistic from counts in the same bins, with its error bound.

    The CDF gap is exact at the bin edges. Inside bin ``i`` the real CDF rises by
    ``p_i`` and the synthetic one by ``q_i``, so the gap stays within
    ``[g_i - q_i, g_i + p_i]`` (``g_i`` the gap at the bin's left edge): the true
    statistic lies in ``[d, d + bound]``. Returns ``(d, bound)``.
    """
    p, q = real / real.sum(), synthetic / synthetic.sum()
    gap_right = np.cumsum(p) - np.cumsum(q)
    d = float(np.abs(gap_right).max())
    gap_left = gap_right - p + q
    upper = float(np.maximum(np.abs(gap_left + p), np.abs(gap_left - q)).max())
    return d, max(upper - d, 0.0)


class KSStatistic(Metric):
    """Two-sample KS statistic of the non-missing values (0 is best)."""

    name = "KSStatistic"
    goal = Goal.MINIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        r, s = present(numeric_values(real_data)), present(numeric_values(synthetic_data))
        if len(r) == 0 or len(s) == 0:
            return float("nan")
        return ks_statistic_from_counts(value_counts(r), value_counts(s))


class KSComplement(Metric):
    """1 - KS statistic, as SDMetrics' KSComplement (1 is best)."""

    name = "KSComplement"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.Series, synthetic_data: pd.Series) -> float:
        return 1.0 - KSStatistic.compute(real_data, synthetic_data)
