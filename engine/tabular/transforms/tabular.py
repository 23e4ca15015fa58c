"""Layer 2 of the tabular encoding: the numeric frame <-> the float32 matrix models train on.

Per column, in schema order (CTGAN paper, section 4.2):

- continuous / integer / datetime: a ``value`` span (tanh, width 1) and a
  ``mode`` span (one-hot over the column's point masses and mixture modes), plus a ``missing``
  span ([present, missing]) when the column has missing values;
- categorical / boolean: a ``category`` span, one-hot over the codes, plus one
  slot for "missing" when the column has missing values.

Everything is vectorised over whole columns.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidDataError, NotFittedError
from engine.tabular.schema.kinds import ColumnKind, TableSchema
from engine.tabular.transforms.columns import TableCodec
from engine.tabular.transforms.layout import EncodedLayout, Span
from engine.tabular.transforms.mode_normalizer import ModeNormalizer

_DISCRETE = (ColumnKind.CATEGORICAL.value, ColumnKind.BOOLEAN.value)


class TabularEncoder:
    """Reversible encoder of a table into a float32 matrix described by ``layout_``.

    Args:
        max_modes: mixture components per continuous column at most.
        weight_threshold: components lighter than this are dropped.
        max_fit_rows: the mixtures are fitted on a random subsample of at most
            this many rows, so a million-row table costs no more than 50,000.
        max_categories: see :class:`TableCodec`.
        seed: seeds the subsample, the mixtures and the mode sampling.
        point_masses: values repeated exactly in at least 5% of a numeric column's
            present values (and 10 rows) get modes of their own and decode exactly
            (see :class:`ModeNormalizer`); False fits the mixture on every value.
    """

    def __init__(
        self,
        *,
        max_modes: int = 10,
        weight_threshold: float = 0.005,
        max_fit_rows: int = 50_000,
        max_categories: int = 1000,
        seed: int = 0,
        point_masses: bool = True,
    ):
        self.max_modes = max_modes
        self.weight_threshold = weight_threshold
        self.max_fit_rows = max_fit_rows
        self.max_categories = max_categories
        self.seed = seed
        self.point_masses = point_masses
        self.codec_: TableCodec | None = None
        self.normalizers_: dict[str, ModeNormalizer] = {}
        self.nullable_: dict[str, bool] = {}
        self.layout_: EncodedLayout | None = None

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame, schema: TableSchema) -> "TabularEncoder":
        rng = np.random.default_rng(self.seed)
        self.codec_ = TableCodec(max_categories=self.max_categories).fit(data, schema)
        frame = self.codec_.numeric_fit_sample(data, self.max_fit_rows, rng)
        self.normalizers_, self.nullable_ = {}, {}
        for st in self.codec_.modelled_columns:
            x = frame[st.name].to_numpy(dtype=np.float64)
            self.nullable_[st.name] = bool(st.null_rate > 0)
            if st.kind not in _DISCRETE:
                self.normalizers_[st.name] = ModeNormalizer.fit(
                    x,
                    max_modes=self.max_modes,
                    weight_threshold=self.weight_threshold,
                    max_fit_rows=self.max_fit_rows,
                    rng=rng,
                    point_masses=self.point_masses,
                )
        self.layout_ = self._build_layout()
        return self

    def _build_layout(self) -> EncodedLayout:
        spans: list[Span] = []
        pos = 0

        def add(column: str, width: int, activation: str, role: str) -> None:
            nonlocal pos
            spans.append(Span(column, pos, width, activation, role))  # type: ignore[arg-type]
            pos += width

        for st in self._codec().modelled_columns:
            if st.kind in _DISCRETE:
                add(st.name, st.num_codes + int(self.nullable_[st.name]), "softmax", "category")
            else:
                add(st.name, 1, "tanh", "value")
                add(st.name, self.normalizers_[st.name].num_modes, "softmax", "mode")
                if self.nullable_[st.name]:
                    add(st.name, 2, "softmax", "missing")
        return EncodedLayout(tuple(spans))

    def _codec(self) -> TableCodec:
        if self.codec_ is None:
            raise NotFittedError("This TabularEncoder is not fitted yet: call fit(data, schema) first.")
        return self.codec_

    def _layout(self) -> EncodedLayout:
        self._codec()
        return self.layout_

    @property
    def output_dim(self) -> int:
        return self._layout().dim

    # ------------------------------------------------------------ transform
    def transform(self, data: pd.DataFrame, *, seed: int | None = None) -> np.ndarray:
        """Encode ``data`` into a float32 matrix ``(len(data), layout_.dim)``."""
        codec, layout = self._codec(), self._layout()
        rng = np.random.default_rng(self.seed if seed is None else seed)
        frame = codec.to_numeric(data)
        values = np.empty((len(frame), len(layout.spans)), dtype=np.float32)  # span form
        at = layout.span_positions()
        for st in codec.modelled_columns:
            name = st.name
            x = frame[name].to_numpy(dtype=np.float64)
            missing = np.isnan(x)
            if (name, "category") in at:
                j = at[name, "category"]
                codes = np.where(missing, st.num_codes, np.nan_to_num(x)).astype(np.int64)
                # Rows outside what the encoder was fitted on (a category or a missing value unseen in the
                # fitting sample of a large table) take the most frequent category.
                codes[codes >= layout.spans[j].width] = 0
                values[:, j] = codes
                continue
            alpha, mode = self.normalizers_[name].transform(x, rng)
            values[:, at[name, "value"]] = alpha
            values[:, at[name, "mode"]] = mode
            if (name, "missing") in at:
                values[:, at[name, "missing"]] = missing
        return layout.one_hot(values)

    def inverse_transform(self, encoded: np.ndarray, *, rng: np.random.Generator, row_offset: int = 0) -> pd.DataFrame:
        """Decode a matrix back into the original table (each one-hot block reads as its largest entry)."""
        layout = self._layout()
        encoded = np.asarray(encoded)
        if encoded.ndim != 2 or encoded.shape[1] != layout.dim:
            raise InvalidDataError(
                f"inverse_transform expects a 2-D encoded matrix of width {layout.dim}; got shape {encoded.shape}."
            )
        return self.inverse_transform_spans(layout.span_values(encoded), rng=rng, row_offset=row_offset)

    def inverse_transform_spans(self, values: np.ndarray, *, rng: np.random.Generator, row_offset: int = 0) -> pd.DataFrame:
        """Decode rows in span form ``(n, len(layout_.spans))`` (see ``engine.tabular.transforms.layout``), as models generate them."""
        layout = self._layout()
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != len(layout.spans):
            raise InvalidDataError(
                f"inverse_transform_spans expects rows of {len(layout.spans)} span values; got shape {values.shape}."
            )
        codec = self._codec()
        frame: dict[str, np.ndarray] = {}
        column_of = {key: values[:, j] for key, j in layout.span_positions().items()}
        for st in codec.modelled_columns:
            name = st.name
            if (name, "category") in column_of:
                codes = column_of[name, "category"].astype(np.float64)
                codes[codes >= st.num_codes] = np.nan  # the slot for "missing"
                frame[name] = codes
                continue
            mode = column_of[name, "mode"].astype(np.int64)
            x = self.normalizers_[name].inverse(column_of[name, "value"].astype(np.float64), mode)
            if (name, "missing") in column_of:
                x[column_of[name, "missing"] == 1] = np.nan
            frame[name] = x
        return codec.from_numeric(frame, rng=rng, row_offset=row_offset, num_rows=len(values))

    # ---------------------------------------------------------- conditions
    def category_index(self, column: str, value: Any) -> int:
        """Index of ``value`` inside ``column``'s category span (validated by the codec)."""
        return self._codec().category_code(column, value)

    def category_frequencies(self, column: str) -> np.ndarray:
        return self._codec().category_frequencies(column)

    # --------------------------------------------------------------- state
    def to_dict(self) -> dict[str, Any]:
        codec = self._codec()
        return {
            "params": {
                "max_modes": self.max_modes,
                "weight_threshold": self.weight_threshold,
                "max_fit_rows": self.max_fit_rows,
                "max_categories": self.max_categories,
                "seed": self.seed,
                "point_masses": self.point_masses,
            },
            "codec": codec.to_dict(),
            "normalizers": {k: v.to_dict() for k, v in self.normalizers_.items()},
            "nullable": self.nullable_,
            "layout": self.layout_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TabularEncoder":
        enc = cls(**d["params"])
        enc.codec_ = TableCodec.from_dict(d["codec"])
        enc.normalizers_ = {k: ModeNormalizer.from_dict(v) for k, v in d["normalizers"].items()}
        enc.nullable_ = {k: bool(v) for k, v in d["nullable"].items()}
        enc.layout_ = EncodedLayout.from_dict(d["layout"])
        return enc

