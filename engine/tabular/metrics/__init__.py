"""The metrics, one per file, each declaring its name, goal and range (SDMetrics-style).

``COLUMN_SHAPE_METRICS`` is the explicit registry the report uses: which
column-shape metric scores a column of each kind.
"""
from __future__ import annotations

from engine.tabular.metrics.association_similarity import AssociationSimilarity, cramers_v, cramers_v_from_counts
from engine.tabular.metrics.base import MISSING, Goal, Metric, labels, numeric_values
from engine.tabular.metrics.contingency_similarity import ContingencySimilarity, discretise, joint_counts
from engine.tabular.metrics.correlation_similarity import CorrelationSimilarity, Moments, correlation
from engine.tabular.metrics.coverage import CategoryCoverage, RangeCoverage
from engine.tabular.metrics.ks_complement import KSComplement, KSStatistic
from engine.tabular.metrics.missing_rate import MissingRateSimilarity
from engine.tabular.metrics.tv_complement import TVComplement
from engine.tabular.metrics.wasserstein import NormalisedWasserstein
from engine.tabular.schema.kinds import ColumnKind

COLUMN_SHAPE_METRICS: dict[ColumnKind, type[Metric]] = {
    ColumnKind.CONTINUOUS: KSComplement,
    ColumnKind.INTEGER: KSComplement,
    ColumnKind.DATETIME: KSComplement,
    ColumnKind.CATEGORICAL: TVComplement,
    ColumnKind.BOOLEAN: TVComplement,
    ColumnKind.CONSTANT: TVComplement,
}

__all__ = [
    "AssociationSimilarity", "COLUMN_SHAPE_METRICS", "CategoryCoverage", "ContingencySimilarity", "CorrelationSimilarity",
    "Goal", "KSComplement", "KSStatistic", "MISSING", "Metric", "MissingRateSimilarity", "Moments", "NormalisedWasserstein",
    "RangeCoverage", "TVComplement", "correlation", "cramers_v", "cramers_v_from_counts", "discretise", "joint_counts", "labels",
    "numeric_values",
]
