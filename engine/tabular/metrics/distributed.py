"""Evaluation of tables larger than memory, with Ray Data.

The column and pair metrics are computed from statistics that merge: each
block of a table is reduced (in Ray Data tasks, in parallel) to counts, and the
driver adds the per-block counts up as they stream in. No table is ever held
whole in memory. Per table:

- discrete columns: ``label -> count`` (exact);
- numeric and datetime columns: missing count, min, max, the exact
  ``value -> count`` while a column has at most ``exact_values`` distinct values,
  and always a histogram of ``histogram_bins`` equal-width bins over the range
  both tables share;
- numeric pairs: the Pearson moments (count, means, centred sums; exact);
- other pairs: joint counts of the labels, numbers cut into the 10 bins of the
  QualityReport (each table over its own range; see ``ContingencySimilarity``;
  exact).

Exactness: everything except three numbers is exact (the same value as the
local path up to float rounding, well within 1e-9): the KS statistic and the
Wasserstein distance of a numeric column with more than ``exact_values``
distinct values are computed from the histogram, and the report states their
error bound per column (``details.columns[c].approximation``): the true KS
statistic lies in ``[d, d + max bin mass]``, the Wasserstein distance within one
bin width (as a share of the real range). Spearman correlations are computed on
the random sample below (their sampling error is about ``1 / sqrt(n)``).

The min/max of the numeric columns, which fix the bins, come from the Parquet
footers when the files record them (no data read) and otherwise from a first
pass that reads the numeric columns only; all other statistics come from one
streaming pass over each table.

In the same pass each block keeps a Bernoulli sample of its rows; the samples
(at most ``sample_rows`` rows per table, the size stated in the report) feed the
privacy metrics, ML efficacy, detection, Spearman and the plots. The exact-copy
rate checks that synthetic sample against the hashes of *all* training rows.
"""
from __future__ import annotations

import itertools
import os
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from engine.core.errors import InvalidDataError
from engine.tabular.metrics.fidelity import (
    ColumnSummary,
    score_column,
    score_discrete_pair,
    score_numeric_pair,
    scored_columns,
    summarise,
)
from engine.tabular.metrics import Moments, correlation, labels, numeric_values
from engine.tabular.metrics.contingency_similarity import bin_edges, joint_counts_from_codes, report_bin_codes
from engine.tabular.metrics.correlation_similarity import similarity
from engine.tabular.metrics.privacy import row_hashes
from engine.tabular.metrics.report import TabularReport
from engine.tabular.metrics.evaluator import assemble_report, check_target
from engine.tabular.schema.infer import infer_schema, validate_table
from engine.tabular.schema.kinds import TableSchema

SCHEMA_ROWS = 10_000  # rows read from the start of the real table to infer column kinds
OVERSAMPLE = 1.2  # blocks keep a little more than asked, trimmed on the driver to exactly sample_rows


@dataclass(frozen=True)
class DistributedOptions:
    """How the distributed evaluator trades exactness and memory.

    Attributes:
        sample_rows: rows of each table kept for the sample-based metrics.
        exact_values: numeric columns with at most this many distinct values get
            exact KS and Wasserstein; above it the histogram is used.
        histogram_bins: bins of the numeric histograms (finer bins, smaller
            error bound, more memory per block: 8 bytes a bin).
        batch_rows: rows per Ray Data batch.
        hash_rows: collect the hashes of every training row for an exact-copy
            check (8 bytes a row on the driver); off, copies are checked
            against the training sample only.
        seed: seed of the samples.
    """

    sample_rows: int = 20_000
    exact_values: int = 10_000
    histogram_bins: int = 4_096
    batch_rows: int = 65_536
    hash_rows: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("sample_rows", "exact_values", "histogram_bins", "batch_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidDataError(f"The {name!r} option of the distributed evaluator must be a positive integer; got {value!r}.")


@dataclass(frozen=True)
class _Plan:
    """What every block computes: fixed before the pass so that block statistics merge."""

    numeric: tuple[str, ...]
    discrete: tuple[str, ...]
    contingency_edges: dict[str, np.ndarray]  # numeric column -> the 10 bin edges of this table's own range (QualityReport)
    histogram_ranges: dict[str, tuple[float, float]]  # numeric column -> range shared by both tables
    numeric_pairs: tuple[tuple[str, str], ...]
    discrete_pairs: tuple[tuple[str, str], ...]
    options: DistributedOptions
    hash_columns: tuple[str, ...] = ()  # non-empty: emit row hashes (training table only)


@dataclass
class _TableStats:
    """Mergeable statistics of one table (or one block of it)."""

    columns: dict[str, ColumnSummary] = field(default_factory=dict)
    moments: dict[tuple[str, str], Moments] = field(default_factory=dict)
    joints: dict[tuple[str, str], pd.Series] = field(default_factory=dict)
    rows: int = 0

    def merge(self, other: "_TableStats", exact_values: int) -> "_TableStats":
        if not self.rows:
            return other
        for name, b in other.columns.items():
            a = self.columns[name]
            counts = None
            if a.counts is not None and b.counts is not None:
                counts = a.counts.add(b.counts, fill_value=0.0)
                # Discrete columns are always counted exactly; numeric ones give way to the histogram.
                if a.histogram is not None and len(counts) > exact_values:
                    counts = None
            hist = a.histogram + b.histogram if a.histogram is not None else None
            self.columns[name] = ColumnSummary(
                a.rows + b.rows, a.missing + b.missing, counts, float(np.fmin(a.minimum, b.minimum)),
                float(np.fmax(a.maximum, b.maximum)), hist, a.histogram_range,
            )
        for key, m in other.moments.items():
            self.moments[key] = self.moments[key].merge(m)
        with warnings.catch_warnings():
            # Bin numbers and the missing label share an index: pandas cannot sort it, and need not.
            warnings.simplefilter("ignore", RuntimeWarning)
            for key, j in other.joints.items():
                self.joints[key] = self.joints[key].add(j, fill_value=0.0)
        self.rows += other.rows
        return self


def _report_edges(bounds: tuple[float, float]) -> np.ndarray:
    """``report_edges`` of a column known by its present range only (the edges depend on nothing else)."""
    lo, hi = bounds
    if np.isnan(lo) or np.isnan(hi):
        return np.histogram_bin_edges(np.zeros(0))  # no present value: numpy's edges of [0, 1]
    return bin_edges(lo, hi)


def _block_stats(frame: pd.DataFrame, plan: _Plan) -> _TableStats:
    stats = _TableStats(rows=len(frame))
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    values: dict[str, np.ndarray] = {}
    for name in plan.discrete:
        lab = labels(frame[name])
        stats.columns[name] = ColumnSummary(len(frame), int(frame[name].isna().sum()), lab.value_counts().astype(np.float64))
        codes[name] = pd.factorize(lab.to_numpy())
    for name in plan.numeric:
        x = numeric_values(frame[name])
        values[name] = x
        ok = x[~np.isnan(x)]
        uniq, counts = np.unique(ok, return_counts=True)
        lo, hi = plan.histogram_ranges[name]
        hist = np.histogram(np.clip(ok, lo, hi), bins=plan.options.histogram_bins, range=(lo, hi))[0].astype(np.float64)
        exact = pd.Series(counts.astype(np.float64), index=uniq) if len(uniq) <= plan.options.exact_values else None
        bounds = (float(ok.min()), float(ok.max())) if len(ok) else (float("nan"), float("nan"))
        stats.columns[name] = ColumnSummary(len(frame), len(x) - len(ok), exact, *bounds, hist, (lo, hi))
        codes[name] = pd.factorize(report_bin_codes(x, plan.contingency_edges[name]).to_numpy())
    for a, b in plan.numeric_pairs:
        stats.moments[(a, b)] = Moments.of(values[a], values[b])
    for a, b in plan.discrete_pairs:
        stats.joints[(a, b)] = joint_counts_from_codes(codes[a], codes[b])
    return stats


def _plain(batch: pa.Table) -> pd.DataFrame:
    """NumPy-backed pandas columns (object strings), as ``pd.read_parquet`` gives."""
    return batch.to_pandas()


def _stats_pass(dataset: Any, plan: _Plan, sample_fraction: float) -> tuple[_TableStats, pd.DataFrame, np.ndarray | None]:
    """One streaming pass: merged statistics, a Bernoulli sample of rows and (optionally) all row hashes."""
    seed = plan.options.seed

    def reduce_block(batch: pa.Table) -> pa.Table:
        frame = _plain(batch)
        hashes = row_hashes(frame, list(plan.hash_columns)) if plan.hash_columns else None
        # Seed each block from its content: the same table gives the same sample, whatever the block order.
        content = row_hashes(frame, list(frame.columns)) if hashes is None else hashes
        rng = np.random.default_rng([seed, int(content.sum(dtype=np.uint64))])
        sample = frame[rng.random(len(frame)) < sample_fraction]
        blob = pickle.dumps((_block_stats(frame, plan), sample, None if hashes is None else np.unique(hashes)))
        return pa.table({"blob": pa.array([blob], type=pa.binary())})

    stats = _TableStats()
    samples: list[pd.DataFrame] = []
    hashes: list[np.ndarray] = []
    reduced = dataset.map_batches(reduce_block, batch_format="pyarrow", batch_size=plan.options.batch_rows)
    for batch in reduced.iter_batches(batch_size=None, batch_format="pyarrow"):
        for blob in batch.column("blob").to_pylist():
            block, sample, block_hashes = pickle.loads(blob)
            stats = stats.merge(block, plan.options.exact_values)
            samples.append(sample)
            if block_hashes is not None:
                hashes.append(block_hashes)
    sample = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame()
    return stats, sample, (np.unique(np.concatenate(hashes)) if hashes else None)


def open_dataset(source: Any) -> Any:
    """A Ray Dataset over a Parquet folder/file/URI, a CSV file/glob, a DataFrame, or a Dataset as is."""
    import ray.data

    if isinstance(source, ray.data.Dataset):
        return source
    if isinstance(source, pd.DataFrame):
        return ray.data.from_pandas(source)
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidDataError(f"A table to evaluate must be a path, a URI, a DataFrame or a Ray Dataset; got {type(source).__name__}.")
    text = str(source)
    if "://" not in text and not any(ch in text for ch in "*?[") and not os.path.exists(text):
        raise InvalidDataError(f"The data {text!r} does not exist.")
    try:
        if text.lower().endswith((".csv", ".csv.gz")):
            return ray.data.read_csv(text)
        return ray.data.read_parquet(text)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InvalidDataError(f"Cannot read {text!r} as Parquet or CSV: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _footers(source: Any, columns: Sequence[str]) -> tuple[int | None, dict[str, tuple[float, float]] | None]:
    """Row count and min/max of the columns from the Parquet footers (``None`` where they do not say)."""
    if not isinstance(source, (str, os.PathLike)) or str(source).lower().endswith((".csv", ".csv.gz")):
        return None, None
    import pyarrow.dataset as pads

    rows, complete = 0, True
    lows: dict[str, list[Any]] = {c: [] for c in columns}
    highs: dict[str, list[Any]] = {c: [] for c in columns}
    try:
        for fragment in pads.dataset(str(source), format="parquet").get_fragments():
            fragment.ensure_complete_metadata()
            for group in fragment.row_groups:
                rows += group.num_rows
                for c in columns:
                    stat = (group.statistics or {}).get(c)
                    if stat is None or "min" not in stat:
                        complete = complete and not group.num_rows  # a row group without statistics
                        continue
                    lows[c].append(stat["min"])
                    highs[c].append(stat["max"])
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None, None
    if not complete:
        return rows, None
    ranges = {}
    for c in columns:
        x = np.r_[numeric_values(pd.Series(lows[c])), numeric_values(pd.Series(highs[c]))]
        if not len(x) or np.isnan(x).any():
            return rows, None
        ranges[c] = (float(x.min()), float(x.max()))
    return rows, ranges


def _scanned_ranges(dataset: Any, columns: Sequence[str], batch_rows: int) -> dict[str, tuple[float, float]]:
    """Min/max of the columns by a pass that reads those columns only."""
    def block_range(batch: pa.Table) -> dict[str, np.ndarray]:
        frame = _plain(batch)
        out = {}
        for c in columns:
            x = numeric_values(frame[c])
            out[c] = np.array([np.nanmin(x), np.nanmax(x)] if (~np.isnan(x)).any() else [np.nan, np.nan])
        return out

    found: dict[str, list[float]] = {c: [] for c in columns}
    ranges = dataset.select_columns(list(columns)).map_batches(block_range, batch_format="pyarrow", batch_size=batch_rows)
    for batch in ranges.iter_batches(batch_size=None, batch_format="numpy"):
        for c in columns:
            found[c].extend(np.asarray(batch[c], dtype=float).tolist())
    return {c: (float(np.nanmin(v)), float(np.nanmax(v))) if not np.isnan(v).all() else (0.0, 1.0) for c, v in ((c, np.asarray(found[c])) for c in columns)}


def _facts(source: Any, dataset: Any, columns: Sequence[str], batch_rows: int) -> tuple[int, dict[str, tuple[float, float]], str]:
    """Row count and numeric ranges: from the Parquet footers when they record them, else from the data."""
    rows, ranges = _footers(source, columns)
    how = "parquet footers"
    if ranges is None:
        ranges = _scanned_ranges(dataset, columns, batch_rows) if columns else {}
        how = "a pass over the numeric columns"
    return (dataset.count() if rows is None else rows), ranges, how


def _sample(source: Any, rows: int, seed: int) -> tuple[pd.DataFrame, int]:
    """A random sample of at most ``rows`` rows, and the table's row count."""
    dataset = open_dataset(source)
    total = _footers(source, ())[0]
    total = dataset.count() if total is None else total
    if total > rows:
        dataset = dataset.random_sample(min(1.0, OVERSAMPLE * rows / total), seed=seed)
    frame = pa.concat_tables(list(dataset.iter_batches(batch_size=None, batch_format="pyarrow"))).to_pandas()
    return (frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame), total


def evaluate_distributed(
    real: Any,
    synthetic: Any,
    *,
    holdout: Any = None,
    target: str | None = None,
    schema: TableSchema | None = None,
    categorical_columns: Sequence[str] | None = None,
    continuous_columns: Sequence[str] | None = None,
    privacy: bool = True,
    detection: bool = True,
    options: DistributedOptions | None = None,
) -> TabularReport:
    """The report of ``synthetic`` against ``real`` for tables larger than memory (Ray must be running).

    Tables are Parquet folders, files or URIs (CSV also works), DataFrames, or
    Ray Datasets. Same report as ``evaluate_tables``; its
    ``details["distributed"]`` states the sample sizes and which numbers are
    approximate, with their error bounds.
    """
    opts = options or DistributedOptions()
    real_ds, syn_ds = open_dataset(real), open_dataset(synthetic)
    if schema is None:
        head = pa.concat_tables(list(real_ds.limit(SCHEMA_ROWS).iter_batches(batch_size=None, batch_format="pyarrow"))).to_pandas()
        if head.empty:
            raise InvalidDataError("The real table is empty: it has no rows.")
        schema = infer_schema(head, categorical_columns=categorical_columns, continuous_columns=continuous_columns)
    check_target(target, schema)
    cols = scored_columns(schema)
    numeric = tuple(c.name for c in cols if c.kind.is_numeric)
    discrete = tuple(c.name for c in cols if not c.kind.is_numeric)
    kinds = {c.name: c.kind for c in cols}
    missing = [n for n in schema.names if n not in syn_ds.columns()]
    if missing:
        raise InvalidDataError(f"The synthetic table lacks the column(s) {', '.join(map(repr, missing))} of the real table.")

    real_rows, real_ranges, real_source = _facts(real, real_ds, numeric, opts.batch_rows)
    syn_rows, syn_ranges, syn_source = _facts(synthetic, syn_ds, numeric, opts.batch_rows)
    pairs = list(itertools.combinations([c.name for c in cols], 2))
    plan = _Plan(
        numeric=numeric,
        discrete=discrete,
        contingency_edges={c: _report_edges(real_ranges[c]) for c in numeric},
        histogram_ranges={c: (min(real_ranges[c][0], syn_ranges[c][0]), max(real_ranges[c][1], syn_ranges[c][1])) for c in numeric},
        numeric_pairs=tuple(p for p in pairs if kinds[p[0]].is_numeric and kinds[p[1]].is_numeric),
        discrete_pairs=tuple(p for p in pairs if not (kinds[p[0]].is_numeric and kinds[p[1]].is_numeric)),
        options=opts,
    )
    if real_rows == 0 or syn_rows == 0:
        raise InvalidDataError(f"Cannot evaluate an empty table: the real table has {real_rows} rows, the synthetic one {syn_rows}.")
    real_plan = _Plan(**{**plan.__dict__, "hash_columns": tuple(schema.names) if opts.hash_rows else ()})
    # The QualityReport bins each table's numbers over that table's own range.
    syn_plan = _Plan(**{**plan.__dict__, "contingency_edges": {c: _report_edges(syn_ranges[c]) for c in numeric}})
    real_stats, real_sample, train_hashes = _stats_pass(real_ds, real_plan, min(1.0, OVERSAMPLE * opts.sample_rows / real_rows))
    syn_stats, syn_sample, _ = _stats_pass(syn_ds, syn_plan, min(1.0, OVERSAMPLE * opts.sample_rows / syn_rows))
    real_sample = real_sample.sample(n=opts.sample_rows, random_state=opts.seed) if len(real_sample) > opts.sample_rows else real_sample
    syn_sample = syn_sample.sample(n=opts.sample_rows, random_state=opts.seed) if len(syn_sample) > opts.sample_rows else syn_sample
    validate_table(syn_sample, schema)

    errors: list[str] = []
    columns: dict[str, dict[str, Any]] = {}
    for name in [c.name for c in cols]:
        try:
            columns[name] = score_column(kinds[name], real_stats.columns[name], syn_stats.columns[name])
        except Exception as exc:  # noqa: BLE001 - one failing column must not abort the report
            errors.append(f"column {name!r}: {type(exc).__name__}: {exc}")
            columns[name] = {"kind": kinds[name].value, "score": float("nan"), "error": str(exc)}
    pair_entries: dict[str, dict[str, Any]] = {}
    for a, b in pairs:
        key = f"{a} / {b}"
        try:
            if (a, b) in real_stats.moments:
                spearman = similarity(correlation(real_sample[a], real_sample[b], "spearman"), correlation(syn_sample[a], syn_sample[b], "spearman"))
                pair_entries[key] = score_numeric_pair(real_stats.moments[(a, b)], syn_stats.moments[(a, b)], spearman)
            else:
                pair_entries[key] = score_discrete_pair(real_stats.joints[(a, b)], syn_stats.joints[(a, b)])
        except Exception as exc:  # noqa: BLE001
            errors.append(f"pair {key!r}: {type(exc).__name__}: {exc}")
            pair_entries[key] = {"score": float("nan"), "error": str(exc)}
    quality = summarise(columns, pair_entries, errors)

    holdout_sample, holdout_rows = None, 0
    if holdout is not None:
        holdout_sample, holdout_rows = _sample(holdout, opts.sample_rows, opts.seed + 7)
        validate_table(holdout_sample, schema)
    approximate = sorted(n for n, c in columns.items() if "approximation" in c)
    distributed = {
        "sample_rows": {"real": len(real_sample), "synthetic": len(syn_sample), "holdout": 0 if holdout_sample is None else len(holdout_sample)},
        "range_source": {"real": real_source, "synthetic": syn_source},
        "exact": "all column and pair scores except those listed under 'approximate' and the Spearman similarities (sample)",
        "approximate": {n: columns[n]["approximation"] for n in approximate},
        "exact_copy_check": "synthetic sample against every training row" if train_hashes is not None else "synthetic sample against the training sample",
        "options": opts.__dict__,
    }
    report = assemble_report(
        quality, real_sample, syn_sample, holdout_sample, schema, target=target, privacy=privacy, detection=detection,
        privacy_rows=opts.sample_rows, seed=opts.seed,
        rows={"real": real_rows, "synthetic": syn_rows, "holdout": holdout_rows},
        extra_details={"distributed": distributed}, train_hashes=train_hashes,
    )
    report.details["notes"].append(
        f"Distributed evaluation: fidelity scores from all {real_rows:,} real and {syn_rows:,} synthetic rows; utility, detection, "
        f"privacy, Spearman and plots from random samples of {len(real_sample):,} / {len(syn_sample):,} rows."
    )
    if privacy and len(real_sample) < real_rows:
        report.details["notes"].append(
            f"The distance-based privacy metrics saw {len(real_sample) / real_rows:.1%} of the training rows: a synthetic copy of a "
            "training row outside that sample looks like an unseen row to them, so they understate memorisation "
            "(the exact-copy rate does not: it checks against every training row)."
        )
    return report


__all__ = ["DistributedOptions", "evaluate_distributed", "open_dataset"]
