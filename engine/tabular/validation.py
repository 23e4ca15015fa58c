"""Validation of a table model during training: the engine's fidelity score on held-out rows.

The front door holds some rows out of training and hands the training loop a
:class:`HoldoutValidator`; every few epochs rank 0 calls it on the model, which
generates rows, decodes them and scores them against the held-out rows with the
overall score of ``engine.tabular.metrics.fidelity.quality_scores`` (column shapes
and pair trends, as the QualityReport; a fraction of a second on a few thousand rows).
The loop keeps the weights of the best score.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.tabular.schema.kinds import TableSchema

HOLDOUT_FRACTION = 0.1
MAX_HOLDOUT_ROWS = 5000
MIN_TRAIN_ROWS = 50  # below this every row trains and validation compares with the training rows


def split_holdout(table: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, holdout)``: 10% of the rows held out (at most 5,000), drawn by ``seed``."""
    n = len(table)
    k = min(MAX_HOLDOUT_ROWS, int(n * HOLDOUT_FRACTION))
    if k < 1 or n - k < MIN_TRAIN_ROWS:
        return table, table
    rng = np.random.default_rng([seed, 7919])
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, size=k, replace=False)] = True
    return table.iloc[~held], table.iloc[held]


class HoldoutValidator:
    """``validator(model) -> float``: the fidelity score of ``len(holdout)`` generated rows against ``holdout``.

    Picklable (it travels to the training workers). The rows are generated from a fixed seed,
    so two validations of the same weights give the same score.
    """

    def __init__(self, encoder: Any, holdout: pd.DataFrame, schema: TableSchema, seed: int = 0, max_rows: int = 2000):
        self.encoder = encoder
        self.holdout = holdout.iloc[:max_rows].reset_index(drop=True)
        self.schema = schema
        self.seed = seed

    def __call__(self, model: Any) -> float:
        from engine.tabular.metrics.fidelity import quality_scores

        generator = torch.Generator().manual_seed(self.seed)
        spans = model.generate_spans(len(self.holdout), None, generator, dtype=torch.float32)
        synthetic = self.encoder.inverse_transform_spans(spans, rng=np.random.default_rng(self.seed))
        return float(quality_scores(self.holdout, synthetic, self.schema)["score"])
