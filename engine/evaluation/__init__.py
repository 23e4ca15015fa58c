"""Evaluation: fidelity, utility and privacy of a synthetic table against the real one.

Depends on the schema only, never on a model::

    from engine.evaluation import QualityEvaluator, evaluate_tables
    report = QualityEvaluator().evaluate_tabular(real_data=real, synthetic_data=syn, target="income")
    report = evaluate_tables(train, syn, holdout=holdout, target="income")
    print(report.summary()); report.save("report/")

For Parquet folders larger than memory, ``engine.evaluation.distributed.evaluate_distributed``
computes the same fidelity scores with Ray Data in a streaming pass.
"""
from __future__ import annotations

from engine.evaluation.fidelity import quality_scores
from engine.evaluation.report import TabularReport
from engine.evaluation.tabular import QualityEvaluator, evaluate_tables

__all__ = ["QualityEvaluator", "TabularReport", "evaluate_tables", "quality_scores"]
