"""Fidelity metrics: does the synthetic table have the real table's shapes and trends?

Each metric is a small stateless function of a real and a synthetic column (or
pair of columns) returning a score in [0, 1], 1 being best. The column-shape
and pair-trend scores are defined as in SDMetrics (KSComplement,
TVComplement, CorrelationSimilarity, ContingencySimilarity) so that the
overall score can be compared with SDMetrics' QualityReport.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, wasserstein_distance

from engine.schema.kinds import ColumnKind

CONTINGENCY_BINS = 10


def as_numeric(s: pd.Series) -> np.ndarray:
    """Numbers of a numeric or datetime column (datetimes as epoch nanoseconds), NaN for missing."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s.astype("int64").to_numpy().astype(np.float64)
        out[s.isna().to_numpy()] = np.nan
        return out
    if s.dtype == object:
        try:
            stamps = pd.to_datetime(s, errors="raise", format="ISO8601")
            return as_numeric(stamps)
        except (ValueError, TypeError):
            pass
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic of the non-missing values."""
    r, s = as_numeric(real), as_numeric(synthetic)
    r, s = r[~np.isnan(r)], s[~np.isnan(s)]
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    return float(1.0 - ks_2samp(r, s).statistic)


def normalised_wasserstein(real: pd.Series, synthetic: pd.Series) -> float:
    """Wasserstein-1 distance after scaling both columns by the real column's range (0 is best)."""
    r, s = as_numeric(real), as_numeric(synthetic)
    r, s = r[~np.isnan(r)], s[~np.isnan(s)]
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    span = float(r.max() - r.min()) or 1.0
    return float(wasserstein_distance((r - r.min()) / span, (s - r.min()) / span))


def _frequencies(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), "__missing__").value_counts(normalize=True)


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - the total variation distance between the category frequencies (missing counts as a category)."""
    fr, fs = _frequencies(real), _frequencies(synthetic)
    cats = fr.index.union(fs.index)
    return float(1.0 - 0.5 * np.abs(fr.reindex(cats, fill_value=0) - fs.reindex(cats, fill_value=0)).sum())


def missing_rate_similarity(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - |real missing share - synthetic missing share|."""
    return float(1.0 - abs(real.isna().mean() - synthetic.isna().mean()))


def category_coverage(real: pd.Series, synthetic: pd.Series) -> float:
    """Share of the real categories that appear in the synthetic column."""
    cats = set(real.dropna().unique())
    return float(len(cats & set(synthetic.dropna().unique())) / len(cats)) if cats else float("nan")


def range_coverage(real: pd.Series, synthetic: pd.Series) -> float:
    """Share of the real range [min, max] covered by the synthetic range (clipped to [0, 1])."""
    r, s = as_numeric(real), as_numeric(synthetic)
    r, s = r[~np.isnan(r)], s[~np.isnan(s)]
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    lo, hi = r.min(), r.max()
    if hi == lo:
        return 1.0
    covered = max(0.0, min(hi, s.max()) - max(lo, s.min())) / (hi - lo)
    return float(np.clip(covered, 0.0, 1.0))


def correlation_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, method: str = "pearson") -> float:
    """1 - |corr_real - corr_synthetic| / 2 for two numeric columns (rows with both present)."""

    def corr(frame: pd.DataFrame) -> float:
        x, y = as_numeric(frame[a]), as_numeric(frame[b])
        ok = ~(np.isnan(x) | np.isnan(y))
        x, y = x[ok], y[ok]
        if len(x) < 2 or x.std() == 0 or y.std() == 0:
            return float("nan")
        if method == "spearman":
            x, y = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
        return float(np.corrcoef(x, y)[0, 1])

    cr, cs = corr(real), corr(synthetic)
    if np.isnan(cr) or np.isnan(cs):
        return float("nan")
    return float(1.0 - abs(cr - cs) / 2.0)


def discretise(real: pd.Series, synthetic: pd.Series, kind: ColumnKind) -> tuple[pd.Series, pd.Series]:
    """Numeric columns cut into bins of the real column's range, as SDMetrics does for contingency."""
    if not kind.is_numeric:
        return real.astype(object), synthetic.astype(object)
    r, s = as_numeric(real), as_numeric(synthetic)
    finite = r[~np.isnan(r)]
    if len(finite) == 0:
        return real.astype(object), synthetic.astype(object)
    edges = np.histogram_bin_edges(finite, bins=CONTINGENCY_BINS)

    def cut(x: np.ndarray) -> pd.Series:
        # All edges, as SDMetrics does: the real maximum gets a bin of its own.
        codes = np.digitize(x, edges).astype(object)
        codes[np.isnan(x)] = None
        return pd.Series(codes)
    return cut(r), cut(s)


def contingency_similarity(real_a: pd.Series, real_b: pd.Series, syn_a: pd.Series, syn_b: pd.Series) -> float:
    """1 - total variation distance between the joint frequency tables of two (discretised) columns."""

    def table(x: pd.Series, y: pd.Series) -> pd.Series:
        frame = pd.DataFrame({"a": x.to_numpy(), "b": y.to_numpy()}).astype(object)
        frame = frame.where(frame.notna(), "__missing__")
        return frame.value_counts(normalize=True)

    tr, ts = table(real_a, real_b), table(syn_a, syn_b)
    idx = tr.index.union(ts.index)
    return float(1.0 - 0.5 * np.abs(tr.reindex(idx, fill_value=0) - ts.reindex(idx, fill_value=0)).sum())


def cramers_v(x: pd.Series, y: pd.Series) -> float:
    """Cramér's V association of two discrete columns (no bias correction; missing is a category), in [0, 1]."""
    from scipy.stats.contingency import association

    frame = pd.DataFrame({"a": x.to_numpy(), "b": y.to_numpy()}).astype(object)
    frame = frame.where(frame.notna(), "__missing__")
    table = frame.groupby(["a", "b"]).size().unstack(fill_value=0).to_numpy()
    if table.sum() == 0 or min(table.shape) < 2:
        return float("nan")
    return float(association(table, method="cramer"))


def pearson(x: pd.Series, y: pd.Series) -> float:
    """Pearson correlation over the rows where both are present (NaN when undefined)."""
    a, b = as_numeric(x), as_numeric(y)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
