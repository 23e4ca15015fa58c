"""CorrelationSimilarity: is the linear (Pearson) or rank (Spearman) correlation of two numeric columns kept?"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from engine.core.errors import InvalidDataError
from engine.tabular.metrics.base import Goal, Metric, numeric_values

Coefficient = Literal["pearson", "spearman"]


@dataclass(frozen=True)
class Moments:
    """Count, means and centred second moments of (x, y) pairs: mergeable (Chan et al.) and exact."""

    n: float = 0.0
    mean_x: float = 0.0
    mean_y: float = 0.0
    m2_x: float = 0.0
    m2_y: float = 0.0
    c_xy: float = 0.0

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> "Moments":
        """Moments of the rows where both values are present."""
        ok = ~(np.isnan(x) | np.isnan(y))
        x, y = x[ok], y[ok]
        if len(x) == 0:
            return cls()
        mx, my = float(x.mean()), float(y.mean())
        dx, dy = x - mx, y - my
        # Element-wise sums rather than BLAS dot products: no thread start-up on every call.
        return cls(float(len(x)), mx, my, float((dx * dx).sum()), float((dy * dy).sum()), float((dx * dy).sum()))

    def merge(self, other: "Moments") -> "Moments":
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        dx, dy = other.mean_x - self.mean_x, other.mean_y - self.mean_y
        w = self.n * other.n / n
        return Moments(
            n,
            self.mean_x + dx * other.n / n,
            self.mean_y + dy * other.n / n,
            self.m2_x + other.m2_x + dx * dx * w,
            self.m2_y + other.m2_y + dy * dy * w,
            self.c_xy + other.c_xy + dx * dy * w,
        )

    def pearson(self) -> float:
        """The Pearson correlation (NaN when a column is constant or fewer than two rows)."""
        if self.n < 2 or self.m2_x <= 0 or self.m2_y <= 0:
            return float("nan")
        return float(np.clip(self.c_xy / np.sqrt(self.m2_x * self.m2_y), -1.0, 1.0))


def correlation(x: pd.Series, y: pd.Series, coefficient: Coefficient = "pearson") -> float:
    """Pearson or Spearman correlation over the rows where both values are present."""
    a, b = numeric_values(x), numeric_values(y)
    if coefficient == "spearman":
        ok = ~(np.isnan(a) | np.isnan(b))
        # Average ranks for ties, as scipy.stats.spearmanr (which SDMetrics calls).
        a, b = pd.Series(a[ok]).rank().to_numpy(), pd.Series(b[ok]).rank().to_numpy()
    elif coefficient != "pearson":
        raise InvalidDataError(f"The 'coefficient' parameter must be 'pearson' or 'spearman'; got {coefficient!r}.")
    return Moments.of(a, b).pearson()


def similarity(real_correlation: float, synthetic_correlation: float) -> float:
    """1 - |real - synthetic| / 2: correlations in [-1, 1] mapped to a score in [0, 1]."""
    if np.isnan(real_correlation) or np.isnan(synthetic_correlation):
        return float("nan")
    return float(1.0 - abs(real_correlation - synthetic_correlation) / 2.0)


class CorrelationSimilarity(Metric):
    """As SDMetrics' CorrelationSimilarity: 1 - |corr_real - corr_synthetic| / 2 (1 is best)."""

    name = "CorrelationSimilarity"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, real_data: pd.DataFrame, synthetic_data: pd.DataFrame, coefficient: Coefficient = "pearson") -> float:
        a, b = real_data.columns[:2]
        return similarity(correlation(real_data[a], real_data[b], coefficient), correlation(synthetic_data[a], synthetic_data[b], coefficient))
