"""ContingencySimilarity: is the joint distribution of two discrete (or binned numeric) columns kept?"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.tabular.metrics.base import MISSING, Goal, Metric, labels, numeric_values, present, total_variation

NUM_BINS = 10


def bin_edges(low: float, high: float, bins: int = NUM_BINS) -> np.ndarray:
    """Equal-width edges over the real range, as ``np.histogram_bin_edges`` makes them."""
    return np.histogram_bin_edges(np.array([low, high], dtype=float), bins=bins)


def bin_codes(x: np.ndarray, edges: np.ndarray) -> pd.Series:
    """Bin numbers ``0 .. len(edges) - 2`` of the values (objects; missing -> ``MISSING``).

    The bins of SDMetrics' standalone ContingencySimilarity: the outer edges are
    open, so the real maximum falls in the last bin (not in a bin of its own) and
    values outside the real range join the nearest outer bin. Missing values are
    a category of their own, as there (``np.digitize`` puts NaN past every edge).
    """
    codes = np.digitize(x, edges[1:-1]).astype(object)
    codes[np.isnan(x)] = MISSING
    return pd.Series(codes)


def report_edges(x: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    """The QualityReport's edges for one table's column: ``bins`` equal-width bins over *its own* present range.

    ``np.histogram_bin_edges`` of the present values, as SDMetrics computes them (an empty
    column gets the edges of [0, 1], a constant one those of [v - 0.5, v + 0.5]).
    """
    return np.histogram_bin_edges(x[~np.isnan(x)], bins=bins)


def report_bin_codes(x: np.ndarray, edges: np.ndarray) -> pd.Series:
    """Bin numbers of SDMetrics' QualityReport (Column Pair Trends): ``np.digitize`` on every edge.

    Values in ``[edges[i-1], edges[i])`` get ``i`` (1 to ``bins``); the last edge is closed
    on the left only, so the rows equal to the table's maximum get ``bins + 1``, and so do
    missing values (``np.digitize`` puts NaN past every edge). With the table's own edges
    (:func:`report_edges`) no value falls below the first.
    """
    return pd.Series(np.digitize(x, edges).astype(object))


BINNINGS = ("report", "metric")


def discretise(
    real: pd.Series, synthetic: pd.Series, numeric: bool, bins: int = NUM_BINS, binning: str = "metric"
) -> tuple[pd.Series, pd.Series]:
    """Both columns as discrete labels; numeric ones cut into bins.

    ``binning="metric"`` (this metric's default): bins of the *real* column's range, outer
    bins open (:func:`bin_codes`), as SDMetrics' standalone ContingencySimilarity.
    ``binning="report"``: each table over its own range, as SDMetrics' QualityReport
    (:func:`report_edges`, :func:`report_bin_codes`); the overall score's default.
    """
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}; got {binning!r}.")
    if not numeric:
        return labels(real).reset_index(drop=True), labels(synthetic).reset_index(drop=True)
    r, s = numeric_values(real), numeric_values(synthetic)
    if binning == "report":
        return report_bin_codes(r, report_edges(r, bins)), report_bin_codes(s, report_edges(s, bins))
    finite = present(r)
    if len(finite) == 0:
        return labels(real).reset_index(drop=True), labels(synthetic).reset_index(drop=True)
    edges = bin_edges(float(finite.min()), float(finite.max()), bins)
    return bin_codes(r, edges), bin_codes(s, edges)


def joint_counts_from_codes(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> pd.Series:
    """Joint counts from ``pd.factorize`` results ``(codes, uniques)`` of two aligned label columns.

    One integer per (a, b) pair counted with ``bincount``: much faster than a
    groupby per pair, and each column is factorised once for all its pairs.
    """
    (ca, ua), (cb, ub) = a, b
    joint = np.bincount(ca * len(ub) + cb, minlength=len(ua) * len(ub))
    nz = np.flatnonzero(joint)
    index = pd.MultiIndex.from_arrays([np.asarray(ua, dtype=object)[nz // len(ub)], np.asarray(ub, dtype=object)[nz % len(ub)]])
    return pd.Series(joint[nz].astype(np.float64), index=index)


def joint_counts(a: pd.Series, b: pd.Series) -> pd.Series:
    """Counts of each (a, b) label pair (labels without missing values), a Series with a two-level index."""
    return joint_counts_from_codes(pd.factorize(a.to_numpy()), pd.factorize(b.to_numpy()))


class ContingencySimilarity(Metric):
    """1 - TVD between the joint frequency tables of two columns (1 is best).

    SDMetrics' definition, missing values counted as a category; numeric columns
    named in ``continuous_columns`` are cut into ``NUM_BINS`` equal-width bins of
    the real column's range, outer bins open (``bin_codes``): the same value as
    SDMetrics' ``ContingencySimilarity.compute(..., continuous_column_names=...)``.

    SDMetrics' QualityReport bins differently: it cuts each table over its *own*
    range (a synthetic column shifted by a constant keeps its score there, not
    here), its last edge is closed so the rows equal to the maximum get an
    eleventh bin of their own, and missing values share that bin (``np.digitize``
    of NaN). ``binning="report"`` gives those bins; the overall score
    (``engine.tabular.metrics.fidelity``) uses them by default.
    """

    name = "ContingencySimilarity"
    goal = Goal.MAXIMIZE
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(
        cls, real_data: pd.DataFrame, synthetic_data: pd.DataFrame, continuous_columns: Sequence[str] = (), binning: str = "metric"
    ) -> float:
        """The score; ``binning`` ``"metric"`` (default) or ``"report"`` (see :func:`discretise`)."""
        a, b = real_data.columns[:2]
        ra, sa = discretise(real_data[a], synthetic_data[a], a in continuous_columns, binning=binning)
        rb, sb = discretise(real_data[b], synthetic_data[b], b in continuous_columns, binning=binning)
        return cls.from_counts(joint_counts(ra, rb), joint_counts(sa, sb))

    @staticmethod
    def from_counts(real: pd.Series, synthetic: pd.Series) -> float:
        """The score from joint ``(a, b) -> count`` Series."""
        return 1.0 - total_variation(real, synthetic)
