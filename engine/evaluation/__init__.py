"""Evaluation: fidelity, utility and privacy of a synthetic table against the real one.

Depends on the schema only, never on a model::

    from engine.evaluation import QualityEvaluator
    report = QualityEvaluator().evaluate_tabular(real_data=real, synthetic_data=syn, target="income")
    report.similarity_score, report.save("report/")
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.evaluation import fidelity as F
from engine.evaluation.privacy import privacy_metrics
from engine.evaluation.report import TabularReport
from engine.evaluation.utility import detection_auc, ml_efficacy
from engine.schema.infer import infer_schema, validate_table
from engine.schema.io import read_table
from engine.schema.kinds import ColumnKind, TableSchema

__all__ = ["QualityEvaluator", "TabularReport", "evaluate_tables", "quality_scores"]

PLOT_BINS = 20
# As in SDMetrics' QualityReport, a pair counts towards the Column Pair Trends property only when the
# real data shows a relationship to preserve: |Pearson| above 0.5, or Cramér's V above 0.3.
REAL_CORRELATION_THRESHOLD = 0.5
REAL_ASSOCIATION_THRESHOLD = 0.3
PLOT_CATEGORIES = 20


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if len(arr) else float("nan")


def quality_scores(real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema) -> dict[str, Any]:
    """Column shapes, column pair trends and the overall score, as SDMetrics' QualityReport defines them.

    A metric that fails on one column or pair is recorded in ``errors`` and left
    out of the averages; the rest of the report goes on.
    """
    errors: list[str] = []
    columns: dict[str, dict[str, Any]] = {}
    modelled = [c for c in schema.columns if c.kind not in (ColumnKind.IDENTIFIER,)]
    for col in modelled:
        r, s = real[col.name], synthetic[col.name]
        entry: dict[str, Any] = {"kind": col.kind.value}
        try:
            if col.kind.is_numeric:
                entry.update(metric="KSComplement", score=F.ks_complement(r, s), coverage=F.range_coverage(r, s),
                             wasserstein=F.normalised_wasserstein(r, s))
                entry["ks_statistic"] = 1.0 - entry["score"] if not np.isnan(entry["score"]) else float("nan")
            else:
                entry.update(metric="TVComplement", score=F.tv_complement(r, s), coverage=F.category_coverage(r, s))
            entry["missing_rate_similarity"] = F.missing_rate_similarity(r, s)
        except Exception as exc:  # noqa: BLE001 - one failing column must not abort the report
            errors.append(f"column {col.name!r}: {type(exc).__name__}: {exc}")
            entry.setdefault("score", float("nan"))
        columns[col.name] = entry

    pairs: dict[str, dict[str, Any]] = {}
    for a, b in itertools.combinations(modelled, 2):
        key = f"{a.name} / {b.name}"
        try:
            if a.kind.is_numeric and b.kind.is_numeric:
                r_real = F.pearson(real[a.name], real[b.name])
                pairs[key] = {
                    "metric": "CorrelationSimilarity",
                    "score": F.correlation_similarity(real, synthetic, a.name, b.name, "pearson"),
                    "spearman_similarity": F.correlation_similarity(real, synthetic, a.name, b.name, "spearman"),
                    "real_correlation": r_real,
                    "meets_threshold": bool(abs(r_real) > REAL_CORRELATION_THRESHOLD) if not np.isnan(r_real) else False,
                }
            else:
                ra, sa = F.discretise(real[a.name], synthetic[a.name], a.kind)
                rb, sb = F.discretise(real[b.name], synthetic[b.name], b.kind)
                vr, vs = F.cramers_v(ra, rb), F.cramers_v(sa, sb)
                pairs[key] = {
                    "metric": "ContingencySimilarity",
                    "score": F.contingency_similarity(ra, rb, sa, sb),
                    "cramers_v_real": vr,
                    "cramers_v_synthetic": vs,
                    "association_similarity": 1.0 - abs(vr - vs) if not (np.isnan(vr) or np.isnan(vs)) else float("nan"),
                    "meets_threshold": bool(vr > REAL_ASSOCIATION_THRESHOLD) if not np.isnan(vr) else False,
                }
        except Exception as exc:  # noqa: BLE001
            errors.append(f"pair {key!r}: {type(exc).__name__}: {exc}")
            pairs[key] = {"score": float("nan")}

    shapes = _nanmean([c["score"] for c in columns.values()])
    trends = _nanmean([p["score"] for p in pairs.values() if p.get("meets_threshold")])
    return {
        "column_shapes": shapes,
        "column_pair_trends": trends,
        "score": _nanmean([shapes, trends]),
        "column_pair_trends_all_pairs": _nanmean([p["score"] for p in pairs.values()]),
        "correlation": _nanmean([p["score"] for p in pairs.values() if p.get("metric") == "CorrelationSimilarity"]),
        "ks_statistic": _nanmean([c.get("ks_statistic", float("nan")) for c in columns.values()]),
        "association": _nanmean([p.get("association_similarity", float("nan")) for p in pairs.values()]),
        "columns": columns,
        "pairs": pairs,
        "errors": errors,
    }


def _plots(real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema) -> dict[str, Any]:
    out: dict[str, Any] = {"columns": {}}
    numeric = []
    for col in schema.columns:
        if col.kind in (ColumnKind.IDENTIFIER, ColumnKind.CONSTANT):
            continue
        if col.kind.is_numeric:
            numeric.append(col.name)
            r, s = F.as_numeric(real[col.name]), F.as_numeric(synthetic[col.name])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            if not len(r):
                continue
            edges = np.histogram_bin_edges(r, bins=PLOT_BINS)
            hr = np.histogram(r, edges)[0] / max(len(r), 1)
            hs = np.histogram(np.clip(s, edges[0], edges[-1]), edges)[0] / max(len(s), 1)
            out["columns"][col.name] = {"labels": [f"{e:.3g}" for e in edges[:-1]], "real": hr.tolist(), "synthetic": hs.tolist()}
        else:
            fr = real[col.name].astype(object).value_counts(normalize=True)
            fs = synthetic[col.name].astype(object).value_counts(normalize=True)
            cats = list(fr.index[:PLOT_CATEGORIES])
            out["columns"][col.name] = {
                "labels": [str(c) for c in cats],
                "real": fr.reindex(cats, fill_value=0).tolist(),
                "synthetic": fs.reindex(cats, fill_value=0).tolist(),
            }
    if len(numeric) >= 2:
        cr = pd.DataFrame({c: F.as_numeric(real[c]) for c in numeric}).corr().to_numpy()
        cs = pd.DataFrame({c: F.as_numeric(synthetic[c]) for c in numeric}).corr().to_numpy()
        out["correlation"] = {"columns": numeric, "real": cr.tolist(), "synthetic": cs.tolist(), "difference": (cs - cr).tolist()}
    return out


def evaluate_tables(
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
    seed: int = 0,
) -> TabularReport:
    """The full report of ``synthetic`` against ``real`` (DataFrames or CSV/Parquet paths).

    ``holdout`` (real rows the synthesizer never saw) enables ML efficacy and
    the train-vs-holdout privacy comparisons. Column kinds are inferred as the
    synthesizer infers them unless ``schema`` or the ``*_columns`` say otherwise.
    """
    real_df, syn_df = read_table(real), read_table(synthetic)
    holdout_df = read_table(holdout) if holdout is not None else None
    if schema is None:
        schema = infer_schema(real_df, categorical_columns=categorical_columns, continuous_columns=continuous_columns)
    validate_table(syn_df, schema)
    if holdout_df is not None:
        validate_table(holdout_df, schema)
    if target is not None and target not in schema:
        from engine.errors import InvalidDataError

        raise InvalidDataError(f"The target column {target!r} is not in the data; the columns are: {', '.join(schema.names)}.")

    q = quality_scores(real_df, syn_df, schema)
    details: dict[str, Any] = {
        "rows": {"real": len(real_df), "synthetic": len(syn_df), "holdout": len(holdout_df) if holdout_df is not None else 0},
        "columns": q["columns"],
        "pairs": q["pairs"],
        "association_similarity": q["association"],
        "errors": list(q["errors"]),
        "plots": _plots(real_df, syn_df, schema),
    }
    ml_score = None
    if target is not None and holdout_df is not None:
        try:
            details["ml_efficacy"] = ml_efficacy(real_df, syn_df, holdout_df, target, schema, seed=seed)
            ml_score = details["ml_efficacy"]["score"]
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"ml_efficacy: {type(exc).__name__}: {exc}")
    det = None
    if detection:
        try:
            det = detection_auc(real_df, syn_df, schema, seed=seed)
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"detection: {type(exc).__name__}: {exc}")
    priv: dict[str, Any] = {}
    if privacy:
        try:
            priv = privacy_metrics(real_df, syn_df, holdout_df, schema, seed=seed)
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"privacy: {type(exc).__name__}: {exc}")
    return TabularReport(
        similarity_score=q["score"],
        column_shapes_score=q["column_shapes"],
        column_pair_trends_score=q["column_pair_trends"],
        correlation_score=q["correlation"],
        ks_statistic=q["ks_statistic"],
        ml_efficacy=ml_score,
        detection_auc=det,
        privacy=priv,
        details=details,
    )


class QualityEvaluator:
    """The seed-style entry point: ``QualityEvaluator().evaluate_tabular(real_data=..., synthetic_data=...)``."""

    def evaluate_tabular(
        self,
        *,
        real_data: Any,
        synthetic_data: Any,
        target: str | None = None,
        categorical_columns: Sequence[str] | None = None,
        continuous_columns: Sequence[str] | None = None,
        holdout_data: Any = None,
        privacy: bool = True,
        detection: bool = True,
    ) -> TabularReport:
        """Report with ``.similarity_score``, ``.correlation_score``, ``.ks_statistic`` and,
        with a target, ``.ml_efficacy`` (a holdout is carved from ``real_data`` when none is given)."""
        real = read_table(real_data)
        holdout = holdout_data
        if target is not None and holdout is None:
            holdout = real.sample(frac=0.2, random_state=0)
            real = real.drop(index=holdout.index)
        return evaluate_tables(
            real,
            synthetic_data,
            holdout=holdout,
            target=target,
            categorical_columns=categorical_columns,
            continuous_columns=continuous_columns,
            privacy=privacy,
            detection=detection,
        )
