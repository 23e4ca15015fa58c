"""The front door of the evaluation layer for in-memory tables: one call, the full report."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from engine.core.errors import InvalidDataError
from engine.tabular.metrics.fidelity import quality_scores
from engine.tabular.metrics.plots import plot_data
from engine.tabular.metrics.privacy import SAMPLE_ROWS, privacy_metrics
from engine.tabular.metrics.report import TabularReport
from engine.tabular.metrics.utility import detection_auc, ml_efficacy
from engine.tabular.schema.infer import infer_schema, validate_table
from engine.tabular.schema.io import read_table
from engine.tabular.schema.kinds import TableSchema

HOLDOUT_FRACTION = 0.2  # share of real_data the seed-style API holds out when a target but no holdout is given
SPLIT_HOLDOUT_NOTE = (
    "No holdout was given, so {rows:,} rows ({share:.0%}) of the real data were held out here, after the fact: the "
    "synthesizer was most likely trained on them. ML efficacy and the privacy metrics then compare the synthetic data "
    "with rows it may have learnt from, which flatters utility and hides memorisation. Pass rows the synthesizer never "
    "saw as the holdout for numbers you can trust."
)
PRIVACY_SPLIT_NOTE = (
    "The holdout rows were split from the real data after training, so the synthesizer may have seen them: the "
    "train-vs-holdout comparisons below (closer-to-train share, membership-inference attacks) cannot detect memorisation "
    "of those rows and read as safer than they are."
)


def check_target(target: str | None, schema: TableSchema) -> None:
    """A clear error when the target column is not in the data."""
    if target is not None and target not in schema:
        raise InvalidDataError(f"The target column {target!r} is not in the data; the columns are: {', '.join(schema.names)}.")


def assemble_report(
    quality: dict[str, Any],
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None,
    schema: TableSchema,
    *,
    target: str | None,
    privacy: bool,
    detection: bool,
    privacy_rows: int,
    seed: int,
    rows: dict[str, int],
    extra_details: dict[str, Any] | None = None,
    train_hashes: Any = None,
    holdout_from_real: bool = False,
) -> TabularReport:
    """Utility, detection and privacy on (samples of) the tables, around fidelity scores computed elsewhere.

    Shared by the local and the distributed paths; any metric that fails is
    recorded in ``details["errors"]`` and the report goes on. ``holdout_from_real``
    says the holdout was split from the data the synthesizer was trained on: the
    report then says so in its notes and its privacy section.
    """
    details: dict[str, Any] = {
        "rows": rows,
        "columns": quality["columns"],
        "pairs": quality["pairs"],
        "properties": {k: quality[k] for k in ("column_shapes", "column_pair_trends", "column_pair_trends_all_pairs", "correlation",
                                               "spearman", "ks_statistic", "wasserstein", "missing_rate_similarity", "coverage", "association")},
        "association_similarity": quality["association"],
        "errors": list(quality["errors"]),
        "notes": [],
        **(extra_details or {}),
    }
    if holdout is not None:
        details["holdout"] = {"rows": len(holdout), "source": "split from real_data" if holdout_from_real else "given"}
        if holdout_from_real:
            share = len(holdout) / max(len(holdout) + len(real), 1)
            details["notes"].append(SPLIT_HOLDOUT_NOTE.format(rows=len(holdout), share=share))
    try:
        details["plots"] = plot_data(real, synthetic, schema)
    except Exception as exc:  # noqa: BLE001 - a chart must never cost the report
        details["errors"].append(f"plots: {type(exc).__name__}: {exc}")
    ml_score = None
    if target is not None and holdout is None:
        details["notes"].append(f"ML efficacy for {target!r} needs a real holdout the synthesizer never saw; none was given.")
    elif target is not None:
        try:
            details["ml_efficacy"] = ml_efficacy(real, synthetic, holdout, target, schema, seed=seed)
            ml_score = details["ml_efficacy"]["score"]
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"ml_efficacy: {type(exc).__name__}: {exc}")
    det = None
    if detection:
        try:
            det = detection_auc(real, synthetic, schema, seed=seed)
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"detection: {type(exc).__name__}: {exc}")
    priv: dict[str, Any] = {}
    if privacy:
        try:
            priv = privacy_metrics(
                real, synthetic, holdout, schema, sample_rows=privacy_rows, seed=seed, train_hashes=train_hashes
            )
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"privacy: {type(exc).__name__}: {exc}")
        if priv and holdout_from_real:
            priv["holdout_caveat"] = PRIVACY_SPLIT_NOTE
    return TabularReport(
        similarity_score=quality["score"],
        column_shapes_score=quality["column_shapes"],
        column_pair_trends_score=quality["column_pair_trends"],
        correlation_score=quality["correlation"],
        ks_statistic=quality["ks_statistic"],
        ml_efficacy=ml_score,
        detection_auc=det,
        privacy=priv,
        details=details,
    )


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
    privacy_rows: int = SAMPLE_ROWS,
    seed: int = 0,
    holdout_from_real: bool = False,
    split_holdout: bool = False,
) -> TabularReport:
    """The full report of ``synthetic`` against ``real`` (DataFrames, Arrow tables or CSV/Parquet paths).

    ``real`` is the data the synthesizer was trained on; ``holdout`` (real rows
    it never saw) enables ML efficacy for ``target`` and the train-vs-holdout
    privacy comparisons. Column kinds are inferred as the synthesizer infers
    them unless ``schema`` or the ``*_columns`` overrides say otherwise. Set
    ``holdout_from_real`` when the holdout rows were cut from the synthesizer's
    training data: the report then warns that utility and privacy are flattered.

    ``split_holdout`` (what ``QualityEvaluator().evaluate_tabular`` asks for when
    given a target but no holdout): hold out ``HOLDOUT_FRACTION`` of ``real``,
    sampled with ``seed``, and report it as cut from the training data.
    """
    real_df, syn_df = read_table(real), read_table(synthetic)
    holdout_df = read_table(holdout) if holdout is not None else None
    if split_holdout and holdout_df is None:
        holdout_df = real_df.sample(frac=HOLDOUT_FRACTION, random_state=seed)
        real_df = real_df.drop(index=holdout_df.index)
        holdout_from_real = True
    if schema is None:
        schema = infer_schema(real_df, categorical_columns=categorical_columns, continuous_columns=continuous_columns)
    validate_table(syn_df, schema)
    if holdout_df is not None:
        validate_table(holdout_df, schema)
    check_target(target, schema)
    quality = quality_scores(real_df, syn_df, schema)
    rows = {"real": len(real_df), "synthetic": len(syn_df), "holdout": len(holdout_df) if holdout_df is not None else 0}
    return assemble_report(
        quality, real_df, syn_df, holdout_df, schema, target=target, privacy=privacy, detection=detection,
        privacy_rows=privacy_rows, seed=seed, rows=rows, holdout_from_real=holdout_from_real,
    )


def __getattr__(name: str) -> Any:
    # QualityEvaluator moved to engine.evaluation.quality (one evaluator for every modality);
    # the old import path keeps giving that same class.
    if name == "QualityEvaluator":
        from engine.evaluation.quality import QualityEvaluator

        return QualityEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
