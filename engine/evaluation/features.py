"""A small feature encoding of tables for the utility and privacy metrics.

Numbers are scaled by the real column's range (missing -> the real median plus
a missing flag); categories become one-hot columns over the real table's most
frequent values (the rest share one column). Fitted on real rows, applied to
any table with the same columns.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.evaluation.fidelity import as_numeric
from engine.schema.kinds import ColumnKind, TableSchema

MAX_ONE_HOT = 50


@dataclass
class FeatureEncoder:
    schema: TableSchema
    exclude: tuple[str, ...] = ()
    numeric_: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # min, span, median
    categories_: dict[str, list] = field(default_factory=dict)

    def fit(self, real: pd.DataFrame) -> "FeatureEncoder":
        for col in self.schema.columns:
            if col.name in self.exclude or col.kind in (ColumnKind.IDENTIFIER, ColumnKind.CONSTANT):
                continue
            if col.kind.is_numeric:
                x = as_numeric(real[col.name])
                x = x[~np.isnan(x)]
                if len(x):
                    self.numeric_[col.name] = (float(x.min()), float(x.max() - x.min()) or 1.0, float(np.median(x)))
            else:
                top = real[col.name].astype(object).value_counts().index[:MAX_ONE_HOT]
                self.categories_[col.name] = list(top)
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        for name, (lo, span, median) in self.numeric_.items():
            x = as_numeric(frame[name])
            missing = np.isnan(x)
            parts.append(((np.where(missing, median, x) - lo) / span)[:, None])
            parts.append(missing[:, None].astype(np.float64))
        for name, cats in self.categories_.items():
            codes = pd.Categorical(frame[name].astype(object), categories=pd.Index(cats, dtype=object)).codes
            onehot = np.zeros((len(frame), len(cats) + 1))
            onehot[np.arange(len(frame)), np.where(codes < 0, len(cats), codes)] = 1.0
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))
