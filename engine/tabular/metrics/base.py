"""What every metric declares, and the value conversions the metrics share.

As in SDMetrics, a metric is a small stateless class: a ``name``, a ``goal``
(maximize or minimize), the range of its values, and classmethods that
compute it. Column metrics take a real and a synthetic ``pd.Series``; pair
metrics take two-column DataFrames. Each metric also exposes the kernel it is
built on (counts, frequencies, moment sums) so that the distributed evaluator,
which merges per-block counts, computes the very same formula.
"""
from __future__ import annotations

import enum
from typing import ClassVar

import numpy as np
import pandas as pd

# The label of missing values where they count as a category of their own: in joint tables (as SDMetrics'
# ContingencySimilarity counts them, ``groupby(dropna=False)``), never in TVComplement (SDMetrics drops them there).
MISSING = "__missing__"


class Goal(str, enum.Enum):
    """Whether a higher or a lower value is better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class Metric:
    """Declared properties of a metric (class attributes, no state)."""

    name: ClassVar[str]
    goal: ClassVar[Goal]
    min_value: ClassVar[float]
    max_value: ClassVar[float]

    @classmethod
    def describe(cls) -> dict[str, object]:
        """The declaration as plain data (for reports)."""
        return {"name": cls.name, "goal": cls.goal.value, "min_value": cls.min_value, "max_value": cls.max_value}


def numeric_values(s: pd.Series) -> np.ndarray:
    """Numbers of a numeric or datetime column (datetimes as epoch nanoseconds), NaN for missing."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        # Normalise the unit: Parquet gives microseconds, pandas nanoseconds, and both tables must agree.
        stamps = s.dt.tz_convert("UTC").dt.tz_localize(None) if isinstance(s.dtype, pd.DatetimeTZDtype) else s
        out = stamps.dt.as_unit("ns").astype("int64").to_numpy().astype(np.float64)
        out[s.isna().to_numpy()] = np.nan
        return out
    if s.dtype == object:
        try:
            return numeric_values(pd.to_datetime(s, errors="raise", format="ISO8601"))
        except (ValueError, TypeError):
            pass
    if isinstance(s.dtype, pd.BooleanDtype) or s.dtype == bool:
        s = s.astype("Float64")
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def present(x: np.ndarray) -> np.ndarray:
    """The non-missing entries of a float array."""
    return x[~np.isnan(x)]


def labels(s: pd.Series) -> pd.Series:
    """A discrete column as plain objects, missing values as the ``MISSING`` category."""
    out = s.astype(object)
    return out.where(s.notna(), MISSING)


def value_counts(x: np.ndarray) -> pd.Series:
    """Counts of each distinct value of a float array (sorted by value)."""
    values, counts = np.unique(x, return_counts=True)
    return pd.Series(counts.astype(np.float64), index=values)


def total_variation(p: pd.Series, q: pd.Series) -> float:
    """Total variation distance of two count (or frequency) tables over the union of their keys."""
    p, q = p / p.sum(), q / q.sum()
    keys = p.index.union(q.index, sort=False)
    return float(0.5 * np.abs(p.reindex(keys, fill_value=0.0).to_numpy() - q.reindex(keys, fill_value=0.0).to_numpy()).sum())
