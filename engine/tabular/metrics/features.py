"""A plain numeric encoding of tables for the utility and privacy metrics.

Numbers are standardised by the real column's mean and standard deviation
(missing -> the mean, plus a missing flag); categories become one-hot columns
over the real table's most frequent values (the rest share one column).
Fitted on real rows, applied to any table with the same columns.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.tabular.metrics import numeric_values
from engine.tabular.schema.kinds import ColumnKind, TableSchema

MAX_ONE_HOT = 50  # categories beyond the 50 most frequent share one column: bounds the width of the encoding


@dataclass
class FeatureEncoder:
    """Standardised numbers and one-hot categories (learned state ends in ``_``)."""

    schema: TableSchema
    exclude: Sequence[str] = ()
    numeric_: dict[str, tuple[float, float]] = field(default_factory=dict)  # mean, std
    missing_flags_: list[str] = field(default_factory=list)
    categories_: dict[str, list[object]] = field(default_factory=dict)

    def fit(self, real: pd.DataFrame) -> "FeatureEncoder":
        for col in self.schema.columns:
            if col.name in self.exclude or col.kind in (ColumnKind.IDENTIFIER, ColumnKind.CONSTANT):
                continue
            if col.kind.is_numeric:
                x = numeric_values(real[col.name])
                ok = x[~np.isnan(x)]
                if len(ok):
                    self.numeric_[col.name] = (float(ok.mean()), float(ok.std()) or 1.0)
                    if len(ok) < len(x) or col.null_rate > 0:
                        self.missing_flags_.append(col.name)
            else:
                self.categories_[col.name] = list(real[col.name].astype(object).value_counts().index[:MAX_ONE_HOT])
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded rows, shape (rows, features)."""
        parts = []
        for name, (mean, std) in self.numeric_.items():
            x = numeric_values(frame[name])
            missing = np.isnan(x)
            parts.append(((np.where(missing, mean, x) - mean) / std)[:, None])
            if name in self.missing_flags_:
                parts.append(missing[:, None].astype(np.float64))
        for name, cats in self.categories_.items():
            codes = pd.Categorical(frame[name].astype(object), categories=pd.Index(cats, dtype=object)).codes
            onehot = np.zeros((len(frame), len(cats) + 1))
            onehot[np.arange(len(frame)), np.where(codes < 0, len(cats), codes)] = 1.0
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))
