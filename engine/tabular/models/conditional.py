"""CTGAN's conditional vector and training-by-sampling (Xu et al. 2019, section 4.3), vectorised.

The conditional vector concatenates one block per discrete column (the
``category`` spans of the layout). During training a discrete column is
picked uniformly, a category of it by log-frequency (so rare categories are
seen often enough to be learned), and a real row holding that category is
drawn; all of this happens for a whole batch with index arithmetic on
precomputed arrays, never a Python loop over rows.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from engine.core.errors import InvalidConditionError
from engine.tabular.transforms.layout import EncodedLayout


class ConditionalVector:
    """The layout of the conditional vector and the category frequencies it is drawn from."""

    def __init__(self, layout: EncodedLayout, frequencies: list[np.ndarray] | None = None):
        self.spans = layout.category_spans
        self.widths = np.array([s.width for s in self.spans], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(np.int64) if len(self.spans) else np.zeros(0, np.int64)
        self.dim = int(self.widths.sum())
        if frequencies is None:
            frequencies = [np.full(w, 1.0 / w) for w in self.widths]
        self.frequencies = [np.asarray(f, dtype=np.float64) for f in frequencies]

    @property
    def num_columns(self) -> int:
        return len(self.spans)

    def column_index(self, column: str) -> int:
        for j, s in enumerate(self.spans):
            if s.column == column:
                return j
        valid = ", ".join(repr(s.column) for s in self.spans)
        raise InvalidConditionError(
            f"The model cannot condition on column {column!r}: its conditional vector (CTGAN, TVAE) holds only the "
            f"categorical and boolean columns, which are: {valid or 'none (the table has no such column)'}."
        )

    def one_hot(self, columns: np.ndarray, categories: np.ndarray) -> torch.Tensor:
        """Conditional vectors ``(n, dim)`` with category ``categories[i]`` of column ``columns[i]`` set."""
        cond = np.zeros((len(columns), self.dim), dtype=np.float32)
        cond[np.arange(len(columns)), self.offsets[columns] + categories] = 1.0
        return torch.from_numpy(cond)

    def mask(self, columns: np.ndarray) -> torch.Tensor:
        """``(n, num_columns)`` one-hot of the conditioned column of each row."""
        m = np.zeros((len(columns), self.num_columns), dtype=np.float32)
        m[np.arange(len(columns)), columns] = 1.0
        return torch.from_numpy(m)

    def draw_for_generation(self, n: int, conditions: Mapping[str, int] | None, generator: torch.Generator) -> np.ndarray | None:
        """For each of ``n`` rows, the position of its set entry in the conditional vector (int64 ``(n,)``).

        Fixed by ``conditions``, else a column uniformly and a category of it by
        the data's frequencies. The generator was trained with one conditioned
        column at a time, so with several conditions the rarest requested category
        is set here and the caller rejects rows that miss the others. None when
        the vector is empty (a table without discrete columns).
        """
        if conditions and not self.num_columns:
            raise InvalidConditionError(
                "The model cannot condition on " + ", ".join(map(repr, conditions)) + ": the table it was trained on "
                "has no categorical or boolean column, so it has no conditional vector."
            )
        if not self.num_columns:
            return None
        if conditions:
            rarest = min(conditions, key=lambda c: self.frequencies[self.column_index(c)][conditions[c]])
            return np.full(n, self.offsets[self.column_index(rarest)] + conditions[rarest], dtype=np.int64)
        columns = torch.randint(0, self.num_columns, (n,), generator=generator).numpy()
        u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
        return self.offsets[columns] + _inverse_cdf(self._cumulative(self.frequencies), columns, u)

    def _cumulative(self, probs: list[np.ndarray]) -> np.ndarray:
        """``(num_columns, max_width)`` cumulative probabilities, padded with 1."""
        # A table without discrete columns has an empty conditional vector: nothing to draw from.
        width = int(self.widths.max()) if self.num_columns else 0
        cum = np.ones((self.num_columns, width), dtype=np.float64)
        for j, p in enumerate(probs):
            cum[j, : len(p)] = np.cumsum(p / p.sum())
        return cum


def _inverse_cdf(cumulative: np.ndarray, columns: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each row, the first category whose cumulative probability reaches ``u``."""
    rows = cumulative[columns]  # (n, max_width)
    return np.minimum((rows < u[:, None]).sum(axis=1), rows.shape[1] - 1)


class TrainingSampler:
    """Training-by-sampling over one shard of encoded rows."""

    def __init__(self, data: np.ndarray, cond: ConditionalVector):
        self.data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        self.cond = cond
        n = len(data)
        orders, starts, counts = [], [], []
        base = 0
        for span in cond.spans:
            codes = data[:, span.start : span.stop].argmax(axis=1)  # (n,)
            order = np.argsort(codes, kind="stable")
            count = np.bincount(codes, minlength=span.width)
            orders.append(order)
            starts.append(base + np.concatenate([[0], np.cumsum(count)[:-1]]))
            counts.append(count)
            base += n
        width = int(cond.widths.max()) if cond.num_columns else 0
        self.order = np.concatenate(orders) if orders else np.zeros(0, np.int64)
        self.start = np.zeros((cond.num_columns, width), dtype=np.int64)
        self.count = np.zeros((cond.num_columns, width), dtype=np.int64)
        for j, (s, c) in enumerate(zip(starts, counts)):
            self.start[j, : len(s)] = s
            self.count[j, : len(c)] = c
        # Empirical frequencies (for generation) and log-frequencies (for training).
        self.frequencies = [c / max(c.sum(), 1) for c in counts]
        self.log_cumulative = cond._cumulative([np.log1p(c.astype(np.float64)) for c in counts])

    def sample_conditions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(columns, categories)`` for ``n`` rows: column uniform, category by log-frequency."""
        columns = rng.integers(0, self.cond.num_columns, size=n)
        return columns, _inverse_cdf(self.log_cumulative, columns, rng.random(n))

    def sample_rows(self, columns: np.ndarray, categories: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """A real row holding category ``categories[i]`` of column ``columns[i]``, for each i."""
        count = self.count[columns, categories]
        pick = self.start[columns, categories] + np.floor(rng.random(len(columns)) * count).astype(np.int64)
        return self.data[torch.from_numpy(self.order[pick])]
