"""The encoding of a table for diffusion models: Gaussian numbers and category indices.

A diffusion model needs numeric columns whose marginal is close to a standard
normal (its forward process ends in one) and categorical columns as integer
indices (its masked process replaces them by a "mask" token). Per column, in
schema order:

- continuous / integer / datetime: one *numeric* slot, quantile-normalised: a
  value ``x`` maps to ``Φ⁻¹(F(x))`` with ``F`` the training CDF interpolated on
  ``num_quantiles`` quantiles. A value that repeats exactly (a point mass such as
  0 for most rows of a capital-gain column, a sentinel such as 99999) holds an
  interval of ``F`` of its own; the forward map spreads its rows uniformly over
  that interval and the inverse map sends the whole interval back to the exact
  value, so point masses survive the round trip exactly. A nullable column adds
  a two-class *discrete* slot ``[present, missing]``;
- categorical / boolean: one *discrete* slot, the codec's code (plus one class
  for "missing" when the column has missing values).

The span form of a row (what the model generates and :meth:`DiffusionEncoder.inverse_transform_spans`
reads) is the numeric slots, then the discrete slots, as float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from engine.core.errors import InvalidDataError, NotFittedError
from engine.tabular.schema.kinds import ColumnKind, TableSchema
from engine.tabular.transforms.columns import TableCodec

_DISCRETE = (ColumnKind.CATEGORICAL.value, ColumnKind.BOOLEAN.value)
# The normal scores are kept inside +-Z_MAX (a CDF level of 1e-4 from either end): the inverse map is
# flat beyond the extreme quantiles anyway, and bounded targets keep the denoiser's regression tame.
Z_MAX = float(ndtri(1 - 1e-4))


@dataclass(frozen=True)
class DiscreteSlot:
    """One discrete slot: ``column``'s category (``role="category"``) or its missing flag (``role="missing"``)."""

    column: str
    role: str
    num_classes: int


@dataclass(frozen=True)
class DiffusionLayout:
    """The slots of a diffusion-encoded row: ``numeric`` columns, then ``discrete`` slots."""

    numeric: tuple[str, ...]
    discrete: tuple[DiscreteSlot, ...]

    @property
    def dim(self) -> int:
        """Values per encoded row (its span form: one per slot)."""
        return len(self.numeric) + len(self.discrete)

    @property
    def num_numeric(self) -> int:
        return len(self.numeric)

    @property
    def class_counts(self) -> tuple[int, ...]:
        return tuple(s.num_classes for s in self.discrete)

    def discrete_index(self, column: str, role: str = "category") -> int:
        """The position among the discrete slots of ``column``'s slot of ``role``."""
        for j, s in enumerate(self.discrete):
            if s.column == column and s.role == role:
                return j
        raise KeyError(column)

    def one_hot(self, values: np.ndarray) -> np.ndarray:
        """The contract's encoded rows: for this layout they are the span form itself."""
        return np.asarray(values, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "discrete": [[s.column, s.role, s.num_classes] for s in self.discrete]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionLayout":
        return cls(tuple(d["numeric"]), tuple(DiscreteSlot(str(c), str(r), int(k)) for c, r, k in d["discrete"]))


class QuantileNormalizer:
    """``x -> Φ⁻¹(F(x))`` with ``F`` the interpolated training CDF; exact on repeated values (see the module docstring)."""

    def __init__(self, levels: np.ndarray, quantiles: np.ndarray):
        self.levels = np.asarray(levels, dtype=np.float64)
        self.quantiles = np.asarray(quantiles, dtype=np.float64)

    @classmethod
    def fit(cls, x: np.ndarray, num_quantiles: int = 1000) -> "QuantileNormalizer":
        x = np.asarray(x, dtype=np.float64)
        x = x[~np.isnan(x)]
        if len(x) == 0:
            x = np.zeros(1)
        levels = np.linspace(0.0, 1.0, max(2, min(num_quantiles, len(x))))
        return cls(levels, np.quantile(x, levels))

    def transform(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Normal scores of ``x`` (NaN rows give 0: their missing flag carries them)."""
        x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=float(self.quantiles[0]))
        q, lv = self.quantiles, self.levels
        lo = np.searchsorted(q, x, side="left")
        hi = np.searchsorted(q, x, side="right")
        tie = hi > lo  # x equals one or more quantiles: it owns the CDF interval [levels[lo], levels[hi-1]]
        # Between two quantiles: linear interpolation of the CDF.
        i = np.clip(lo, 1, len(q) - 1)
        gap = q[i] - q[i - 1]
        frac = np.clip(np.where(gap > 0, (x - q[i - 1]) / np.where(gap > 0, gap, 1.0), 0.5), 0.0, 1.0)
        u = lv[i - 1] + frac * (lv[i] - lv[i - 1])
        u = np.where(x <= q[0], 0.0, np.where(x >= q[-1], 1.0, u))
        if tie.any():
            a = lv[lo[tie]]
            b = lv[hi[tie] - 1]
            u[tie] = a + rng.random(int(tie.sum())) * (b - a)
        return np.clip(ndtri(np.clip(u, 1e-12, 1 - 1e-12)), -Z_MAX, Z_MAX)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Values of normal scores: the interpolated quantile function at ``Φ(z)``."""
        return np.interp(ndtr(np.asarray(z, dtype=np.float64)), self.levels, self.quantiles)

    def to_dict(self) -> dict[str, Any]:
        return {"levels": self.levels.tolist(), "quantiles": self.quantiles.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QuantileNormalizer":
        return cls(np.asarray(d["levels"]), np.asarray(d["quantiles"]))


class DiffusionEncoder:
    """Reversible encoder of a table into the span form of a :class:`DiffusionLayout`.

    It offers what the tabular sampling path reads of an encoder (``codec_``,
    ``layout_``, ``category_index``, ``inverse_transform_spans``, ``to_dict``).

    Args:
        num_quantiles: quantiles kept per numeric column.
        max_fit_rows: the quantiles are computed on a random subsample of at most this many rows.
        max_categories: see :class:`TableCodec`.
        seed: seeds the subsample and the spreading of repeated values.
    """

    def __init__(self, *, num_quantiles: int = 1000, max_fit_rows: int = 50_000, max_categories: int = 1000, seed: int = 0):
        self.num_quantiles = num_quantiles
        self.max_fit_rows = max_fit_rows
        self.max_categories = max_categories
        self.seed = seed
        self.codec_: TableCodec | None = None
        self.normalizers_: dict[str, QuantileNormalizer] = {}
        self.nullable_: dict[str, bool] = {}
        self.layout_: DiffusionLayout | None = None

    def fit(self, data: pd.DataFrame, schema: TableSchema) -> "DiffusionEncoder":
        rng = np.random.default_rng(self.seed)
        self.codec_ = TableCodec(max_categories=self.max_categories).fit(data, schema)
        frame = self.codec_.numeric_fit_sample(data, self.max_fit_rows, rng)
        self.normalizers_, self.nullable_ = {}, {}
        numeric: list[str] = []
        discrete: list[DiscreteSlot] = []
        for st in self.codec_.modelled_columns:
            self.nullable_[st.name] = bool(st.null_rate > 0)
            if st.kind in _DISCRETE:
                discrete.append(DiscreteSlot(st.name, "category", st.num_codes + int(self.nullable_[st.name])))
            else:
                self.normalizers_[st.name] = QuantileNormalizer.fit(frame[st.name].to_numpy(np.float64), self.num_quantiles)
                numeric.append(st.name)
                if self.nullable_[st.name]:
                    discrete.append(DiscreteSlot(st.name, "missing", 2))
        self.layout_ = DiffusionLayout(tuple(numeric), tuple(discrete))
        return self

    def _codec(self) -> TableCodec:
        if self.codec_ is None or self.layout_ is None:
            raise NotFittedError("This DiffusionEncoder is not fitted yet: call fit(data, schema) first.")
        return self.codec_

    def transform(self, data: pd.DataFrame, *, seed: int | None = None) -> np.ndarray:
        """Span form ``(len(data), layout_.dim)`` float32 of ``data``."""
        codec = self._codec()
        layout = self.layout_
        rng = np.random.default_rng(self.seed if seed is None else seed)
        frame = codec.to_numeric(data)
        out = np.empty((len(frame), layout.dim), dtype=np.float32)
        for j, name in enumerate(layout.numeric):
            out[:, j] = self.normalizers_[name].transform(frame[name].to_numpy(np.float64), rng)
        for j, slot in enumerate(layout.discrete):
            x = frame[slot.column].to_numpy(np.float64)
            missing = np.isnan(x)
            if slot.role == "missing":
                codes = missing.astype(np.int64)
            else:
                codes = np.where(missing, slot.num_classes - 1, np.nan_to_num(x)).astype(np.int64)
                codes[codes >= slot.num_classes] = 0  # unseen in the fitting sample: the most frequent code
            out[:, layout.num_numeric + j] = codes
        return out

    def inverse_transform_spans(self, values: np.ndarray, *, rng: np.random.Generator, row_offset: int = 0) -> pd.DataFrame:
        """Decode rows in span form ``(n, layout_.dim)`` back into the original table."""
        codec = self._codec()
        layout = self.layout_
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != layout.dim:
            raise InvalidDataError(f"inverse_transform_spans expects rows of {layout.dim} values; got shape {values.shape}.")
        frame: dict[str, np.ndarray] = {}
        for j, name in enumerate(layout.numeric):
            frame[name] = self.normalizers_[name].inverse(values[:, j])
        for j, slot in enumerate(layout.discrete):
            v = values[:, layout.num_numeric + j]
            if slot.role == "missing":
                frame[slot.column] = np.where(v == 1, np.nan, frame[slot.column])
            else:
                codes = v.astype(np.float64)
                codes[codes >= codec.column(slot.column).num_codes] = np.nan  # the class for "missing"
                frame[slot.column] = codes
        return codec.from_numeric(frame, rng=rng, row_offset=row_offset, num_rows=len(values))

    def category_index(self, column: str, value: Any) -> int:
        """The class of ``value`` in ``column``'s discrete slot (validated by the codec)."""
        return self._codec().category_code(column, value)

    def to_dict(self) -> dict[str, Any]:
        codec = self._codec()
        return {
            "encoding": "diffusion",
            "params": {"num_quantiles": self.num_quantiles, "max_fit_rows": self.max_fit_rows,
                       "max_categories": self.max_categories, "seed": self.seed},
            "codec": codec.to_dict(),
            "normalizers": {k: v.to_dict() for k, v in self.normalizers_.items()},
            "nullable": self.nullable_,
            "layout": self.layout_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionEncoder":
        enc = cls(**d["params"])
        enc.codec_ = TableCodec.from_dict(d["codec"])
        enc.normalizers_ = {k: QuantileNormalizer.from_dict(v) for k, v in d["normalizers"].items()}
        enc.nullable_ = {k: bool(v) for k, v in d["nullable"].items()}
        enc.layout_ = DiffusionLayout.from_dict(d["layout"])
        return enc
