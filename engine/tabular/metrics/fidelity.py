"""Fidelity of a whole table: column shapes, column pair trends and the overall score.

Built as SDMetrics' QualityReport builds its score, so a user can compare:

- Column Shapes: the mean of KSComplement (numeric, datetime) and TVComplement
  (categorical, boolean) over the columns;
- Column Pair Trends: the mean of CorrelationSimilarity (Pearson; two numeric
  columns) and ContingencySimilarity (otherwise, numeric columns binned) over
  the pairs where the real data shows a relationship to preserve (|Pearson| >
  0.5 or Cramér's V > 0.3, SDMetrics' default thresholds);
- the overall score: the mean of the two properties.

Missing values are treated as SDMetrics treats them: dropped by KSComplement,
TVComplement and CorrelationSimilarity (their share is scored by
MissingRateSimilarity), a category of their own in ContingencySimilarity.

A numeric column paired with a discrete one is binned as the QualityReport bins
it (``binning="report"``, the default): each table over its own range in 10
equal-width bins, the rows at a table's maximum and its missing values sharing
an eleventh bin (see ``ContingencySimilarity``), so the overall score equals the
QualityReport's on any pair of tables (above 50,000 rows the QualityReport
scores contingency pairs on a random subsample, so it then differs by that
sampling noise). ``binning="metric"`` keeps the bins of SDMetrics' standalone
metric instead (the real range, outer bins open: a synthetic value outside the
real range joins the nearest outer bin), where a pair score equals
``ContingencySimilarity.compute(..., continuous_column_names=[...])``.

Each column and pair is first reduced to counts (``ColumnSummary``,
``Moments``, joint counts); the scores are computed from those. The local path
takes the counts of whole columns, the distributed path merges them block by
block, and both then share the code below, so they agree.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.tabular.metrics import (
    COLUMN_SHAPE_METRICS,
    MISSING,
    AssociationSimilarity,
    CategoryCoverage,
    ContingencySimilarity,
    Moments,
    RangeCoverage,
    TVComplement,
    correlation,
    cramers_v_from_counts,
    cramers_v,
    discretise,
    labels,
    numeric_values,
)
from engine.tabular.metrics.contingency_similarity import BINNINGS, bin_codes, bin_edges
from engine.tabular.metrics.correlation_similarity import similarity
from engine.tabular.metrics.ks_complement import ks_statistic_from_counts, ks_statistic_from_histograms
from engine.tabular.metrics.missing_rate import MissingRateSimilarity
from engine.tabular.metrics.wasserstein import normalised_wasserstein_from_counts
from engine.tabular.schema.kinds import ColumnKind, TableSchema

# SDMetrics' QualityReport defaults: a pair counts towards Column Pair Trends only when the real data
# shows a relationship to preserve.
REAL_CORRELATION_THRESHOLD = 0.5
REAL_ASSOCIATION_THRESHOLD = 0.3


@dataclass
class ColumnSummary:
    """Everything the column metrics need to know about one column of one table.

    ``counts`` maps each value (numbers for numeric columns, labels with
    ``MISSING`` for discrete ones) to its count; it is ``None`` for a numeric
    column with too many distinct values to count exactly, which then carries
    ``histogram`` (counts in equal-width bins over ``histogram_range``).
    """

    rows: int
    missing: int
    counts: pd.Series | None
    minimum: float = float("nan")
    maximum: float = float("nan")
    histogram: np.ndarray | None = None
    histogram_range: tuple[float, float] | None = None

    @classmethod
    def of(cls, column: pd.Series, numeric: bool) -> "ColumnSummary":
        """Exact summary of a whole (in-memory) column."""
        if not numeric:
            return cls(len(column), int(column.isna().sum()), labels(column).value_counts().astype(np.float64))
        x = numeric_values(column)
        ok = x[~np.isnan(x)]
        values, counts = np.unique(ok, return_counts=True)
        lo, hi = (float(ok.min()), float(ok.max())) if len(ok) else (float("nan"), float("nan"))
        return cls(len(column), len(x) - len(ok), pd.Series(counts.astype(np.float64), index=values), lo, hi)


def score_column(kind: ColumnKind, real: ColumnSummary, synthetic: ColumnSummary) -> dict[str, Any]:
    """Column-shape score and the other column metrics from two summaries."""
    entry: dict[str, Any] = {"kind": kind.value, "metric": COLUMN_SHAPE_METRICS[kind].name}
    entry["missing_rate_similarity"] = MissingRateSimilarity.from_rates(real.missing / max(real.rows, 1), synthetic.missing / max(synthetic.rows, 1))
    if not kind.is_numeric:
        entry["score"] = TVComplement.from_counts(real.counts, synthetic.counts)
        entry["coverage"] = CategoryCoverage.from_categories(
            [c for c in real.counts.index if c != MISSING], [c for c in synthetic.counts.index if c != MISSING]
        )
        return entry
    if real.rows == real.missing or synthetic.rows == synthetic.missing:
        raise ValueError("a table has no value in this column, so its distribution cannot be compared")
    span = real.maximum - real.minimum
    if real.counts is not None and synthetic.counts is not None:
        ks = ks_statistic_from_counts(real.counts, synthetic.counts)
        entry["wasserstein"] = normalised_wasserstein_from_counts(real.counts, synthetic.counts, real.minimum, span)
    else:
        ks, bound = ks_statistic_from_histograms(real.histogram, synthetic.histogram)
        lo, hi = real.histogram_range
        centres = lo + (np.arange(len(real.histogram)) + 0.5) * (hi - lo) / len(real.histogram)
        entry["wasserstein"] = normalised_wasserstein_from_counts(
            pd.Series(real.histogram, index=centres), pd.Series(synthetic.histogram, index=centres), real.minimum, span
        )
        entry["approximation"] = {
            "ks_statistic_max_error": bound,
            "wasserstein_max_error": float((hi - lo) / len(real.histogram) / (span or 1.0)),
        }
    entry["score"] = 1.0 - ks
    entry["ks_statistic"] = ks
    entry["coverage"] = RangeCoverage.from_ranges(real.minimum, real.maximum, synthetic.minimum, synthetic.maximum)
    return entry


def score_numeric_pair(real: Moments, synthetic: Moments, spearman_similarity: float) -> dict[str, Any]:
    """Pair-trend entry of two numeric columns."""
    r_real = real.pearson()
    return {
        "metric": "CorrelationSimilarity",
        "score": similarity(r_real, synthetic.pearson()),
        "spearman_similarity": spearman_similarity,
        "real_correlation": r_real,
        "synthetic_correlation": synthetic.pearson(),
        "meets_threshold": bool(not np.isnan(r_real) and abs(r_real) > REAL_CORRELATION_THRESHOLD),
    }


def score_discrete_pair(real: pd.Series, synthetic: pd.Series) -> dict[str, Any]:
    """Pair-trend entry from the joint counts of two (discretised) columns."""
    return _discrete_entry(ContingencySimilarity.from_counts(real, synthetic), cramers_v_from_counts(real), cramers_v_from_counts(synthetic))


def _score_dense_pair(a: tuple[np.ndarray, np.ndarray, int], b: tuple[np.ndarray, np.ndarray, int]) -> dict[str, Any]:
    """``score_discrete_pair`` for codes that real and synthetic share (one factorisation of both): dense tables."""
    (ra, sa, na), (rb, sb, nb) = a, b
    real = np.bincount(ra * nb + rb, minlength=na * nb).reshape(na, nb)
    syn = np.bincount(sa * nb + sb, minlength=na * nb).reshape(na, nb)
    score = 1.0 - 0.5 * float(np.abs(real / real.sum() - syn / syn.sum()).sum())
    return _discrete_entry(score, cramers_v(real), cramers_v(syn))


def _discrete_entry(score: float, v_real: float, v_syn: float) -> dict[str, Any]:
    return {
        "metric": "ContingencySimilarity",
        "score": score,
        "cramers_v_real": v_real,
        "cramers_v_synthetic": v_syn,
        "association_similarity": AssociationSimilarity.from_values(v_real, v_syn),
        "meets_threshold": bool(not np.isnan(v_real) and v_real > REAL_ASSOCIATION_THRESHOLD),
    }


def scored_columns(schema: TableSchema) -> list:
    """The columns the report scores: all but identifiers (unique keys carry no distribution)."""
    return [c for c in schema.columns if c.kind is not ColumnKind.IDENTIFIER]


def _nanmean(values: Sequence[float | None]) -> float:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if len(arr) else float("nan")


def summarise(columns: dict[str, dict[str, Any]], pairs: dict[str, dict[str, Any]], errors: list[str]) -> dict[str, Any]:
    """The properties and the overall score from per-column and per-pair entries."""
    shapes = _nanmean([c.get("score") for c in columns.values()])
    trends = _nanmean([p.get("score") for p in pairs.values() if p.get("meets_threshold")])
    return {
        "column_shapes": shapes,
        "column_pair_trends": trends,
        "score": _nanmean([shapes, trends]),
        "column_pair_trends_all_pairs": _nanmean([p.get("score") for p in pairs.values()]),
        "correlation": _nanmean([p.get("score") for p in pairs.values() if p.get("metric") == "CorrelationSimilarity"]),
        "spearman": _nanmean([p.get("spearman_similarity") for p in pairs.values()]),
        "ks_statistic": _nanmean([c.get("ks_statistic") for c in columns.values()]),
        "wasserstein": _nanmean([c.get("wasserstein") for c in columns.values()]),
        "missing_rate_similarity": _nanmean([c.get("missing_rate_similarity") for c in columns.values()]),
        "coverage": _nanmean([c.get("coverage") for c in columns.values()]),
        "association": _nanmean([p.get("association_similarity") for p in pairs.values()]),
        "columns": columns,
        "pairs": pairs,
        "errors": errors,
    }


def _spearman_similarity(a: str, b: str, numbers: dict, ranks: dict) -> float:
    """Spearman similarity; the per-column ranks serve when neither column has missing values."""
    out = []
    for i in (0, 1):
        x, y = numbers[a][i], numbers[b][i]
        if np.isnan(x).any() or np.isnan(y).any():  # ranks over the rows where both are present
            out.append(correlation(pd.Series(x), pd.Series(y), "spearman"))
        else:
            out.append(Moments.of(ranks[a][i], ranks[b][i]).pearson())
    return similarity(*out)


def quality_scores(real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema, *, binning: str = "report") -> dict[str, Any]:
    """Column shapes, column pair trends and the overall score of two in-memory tables.

    ``binning``: how numeric columns are binned in mixed pairs, ``"report"`` (the
    QualityReport's bins, default) or ``"metric"`` (the standalone metric's; see the
    module docstring). A metric that fails on one column or pair is recorded in
    ``errors`` and left out of the averages; the rest of the report goes on.
    """
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}; got {binning!r}.")
    errors: list[str] = []
    cols = scored_columns(schema)
    columns: dict[str, dict[str, Any]] = {}
    for col in cols:
        try:
            numeric = col.kind.is_numeric
            columns[col.name] = score_column(col.kind, ColumnSummary.of(real[col.name], numeric), ColumnSummary.of(synthetic[col.name], numeric))
        except Exception as exc:  # noqa: BLE001 - one failing column must not abort the report
            errors.append(f"column {col.name!r}: {type(exc).__name__}: {exc}")
            columns[col.name] = {"kind": col.kind.value, "score": float("nan"), "error": str(exc)}

    # Each column is discretised (numbers binned), factorised and ranked once; pairs reuse it.
    discrete: dict[str, tuple[Any, Any]] = {}
    numbers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ranks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for col in cols:
        try:
            r, s = discretise(real[col.name], synthetic[col.name], col.kind.is_numeric, binning=binning)
            codes, uniques = pd.factorize(np.concatenate([r.to_numpy(), s.to_numpy()]))
            discrete[col.name] = (codes[: len(r)], codes[len(r):], len(uniques))
            if col.kind.is_numeric:
                numbers[col.name] = numeric_values(real[col.name]), numeric_values(synthetic[col.name])
                ranks[col.name] = tuple(pd.Series(x).rank().to_numpy() for x in numbers[col.name])
        except Exception as exc:  # noqa: BLE001
            errors.append(f"column {col.name!r} (pairs): {type(exc).__name__}: {exc}")

    pairs: dict[str, dict[str, Any]] = {}
    for a, b in itertools.combinations(cols, 2):
        key = f"{a.name} / {b.name}"
        try:
            if a.kind.is_numeric and b.kind.is_numeric:
                (ra, sa), (rb, sb) = numbers[a.name], numbers[b.name]
                pairs[key] = score_numeric_pair(Moments.of(ra, rb), Moments.of(sa, sb), _spearman_similarity(a.name, b.name, numbers, ranks))
            else:
                pairs[key] = _score_dense_pair(discrete[a.name], discrete[b.name])
        except Exception as exc:  # noqa: BLE001
            errors.append(f"pair {key!r}: {type(exc).__name__}: {exc}")
            pairs[key] = {"score": float("nan"), "error": str(exc)}
    return summarise(columns, pairs, errors)


__all__ = [
    "ColumnSummary", "bin_codes", "bin_edges", "quality_scores", "score_column", "score_discrete_pair",
    "score_numeric_pair", "scored_columns", "summarise",
]
