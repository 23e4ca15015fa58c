"""Layer 1 of the tabular encoding: raw columns <-> a numeric frame, exactly reversible.

The *numeric frame* has one float64 column per modelled column (every column
except identifiers and constants), NaN where the value is missing:

- continuous / integer: the number;
- datetime: seconds since the Unix epoch;
- categorical / boolean: the category code ``0..k-1``, codes in order of
  decreasing training frequency.

Decoding restores the original column order, names, dtypes and labels; rounds
integers; clips numbers and dates to the range seen in training; regenerates
identifiers (unique across shards through ``row_offset``) and refills
constants.

High-cardinality categories are *capped*: a column with more than
``max_categories`` distinct values keeps the ``max_categories - 1`` most
frequent ones and pools the others into one last "rare" code. Decoding that
code draws one of the pooled values by its training frequency (up to
``MAX_POOLED_VALUES`` of them are remembered). No one-hot wider than the cap is
ever built downstream.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidConditionError, NotFittedError
from engine.tabular.schema.kinds import ColumnKind, TableSchema

MAX_POOLED_VALUES = 100_000
_PREFIXED_ID = re.compile(r"^(.*?)(\d+)$")


def _json_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


@dataclass
class ColumnCodecState:
    """What the codec learned about one column (JSON-serialisable)."""

    name: str
    kind: str
    dtype: str
    null_rate: float = 0.0
    low: float | None = None  # numeric / datetime range, in numeric units
    high: float | None = None
    datetime_format: str | None = None
    categories: list[Any] = field(default_factory=list)  # kept labels, code order
    frequencies: list[float] = field(default_factory=list)  # of the codes, the rare code last if pooled
    pooled_values: list[Any] = field(default_factory=list)
    pooled_counts: list[int] = field(default_factory=list)
    constant: Any = None
    id_prefix: str | None = None  # identifiers: None for integers, else text prefix
    id_width: int = 0
    id_start: int = 0  # identifiers: generated numbers start here (after the largest training key)
    dtype_categories: list[Any] | None = None  # category dtype: its categories, in their original order
    dtype_ordered: bool = False
    time_step_ns: int = 1  # datetimes: the coarsest unit (s, ms, us, ns) all training values are whole multiples of

    @property
    def pooled(self) -> bool:
        return bool(self.pooled_values)

    @property
    def num_codes(self) -> int:
        return len(self.categories) + (1 if self.pooled else 0)


class TableCodec:
    """Maps a raw table to its numeric frame and back (see the module docstring).

    Args:
        max_categories: codes per categorical column at most (the last one pools the rare values).
    """

    def __init__(self, *, max_categories: int = 1000):
        if not isinstance(max_categories, int) or max_categories < 2:
            raise ValueError(f"The 'max_categories' parameter of TableCodec must be an integer >= 2. Got {max_categories!r} instead.")
        self.max_categories = max_categories
        self.columns_: list[ColumnCodecState] | None = None

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame, schema: TableSchema) -> "TableCodec":
        self.columns_ = [self._fit_column(data[c.name], c.name, c.kind, c.dtype, c.datetime_format) for c in schema.columns]
        self._index = {c.name: c for c in self.columns_}
        return self

    def _fit_column(self, s: pd.Series, name: str, kind: ColumnKind, dtype: str, fmt: str | None) -> ColumnCodecState:
        st = ColumnCodecState(name=name, kind=kind.value, dtype=dtype, null_rate=float(s.isna().mean()), datetime_format=fmt)
        values = s.dropna()
        if kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME):
            x = self._numbers(s, st)
            x = x[~np.isnan(x)]
            if len(x):
                st.low, st.high = float(x.min()), float(x.max())
            if kind == ColumnKind.DATETIME:
                stamps = (pd.to_datetime(s, format=fmt) if fmt else pd.to_datetime(s)).dropna()
                ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
                # Seconds as float64 carry ~0.2 us of error near today's dates: decoding rounds to this step.
                st.time_step_ns = next((u for u in (10**9, 10**6, 10**3) if len(ns) and np.all(ns % u == 0)), 1)
        elif kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
            counts = values.value_counts(sort=False)
            counts = counts[counts > 0]  # a pandas category never seen in the data gets no code
            if isinstance(s.dtype, pd.CategoricalDtype):
                st.dtype_categories = [_json_scalar(v) for v in s.cat.categories.tolist()]
                st.dtype_ordered = bool(s.cat.ordered)
            # Frequency order, ties broken by the label's text so the order is deterministic.
            order = np.lexsort((counts.index.astype(str).to_numpy(dtype=str), -counts.to_numpy()))
            labels = [_json_scalar(v) for v in counts.index[order].tolist()]
            n = counts.to_numpy(dtype=np.int64)[order]
            keep = len(labels) if len(labels) <= self.max_categories else self.max_categories - 1
            st.categories = labels[:keep]
            freqs = list(n[:keep])
            if keep < len(labels):
                st.pooled_values = labels[keep : keep + MAX_POOLED_VALUES]
                st.pooled_counts = [int(c) for c in n[keep : keep + MAX_POOLED_VALUES]]
                freqs.append(int(n[keep:].sum()))
            total = float(sum(freqs)) or 1.0
            st.frequencies = (np.asarray(freqs, dtype=np.float64) / total).tolist()
        elif kind == ColumnKind.CONSTANT:
            st.constant = _json_scalar(values.iloc[0]) if len(values) else None
        elif kind == ColumnKind.IDENTIFIER:
            if not pd.api.types.is_numeric_dtype(s.dtype):
                text = values.astype(str)
                m = text.str.extract(_PREFIXED_ID)
                prefixes = m[0].dropna().unique()
                # More than 18 digits would overflow int64 numbering: such keys get the generic style.
                if m[1].notna().all() and len(prefixes) == 1 and int(m[1].str.len().max()) <= 18:
                    st.id_prefix, st.id_width = str(prefixes[0]), int(m[1].str.len().max())
                    st.id_start = int(m[1].astype(np.int64).max()) + 1
                else:
                    st.id_prefix, st.id_width = "id_", 0
            elif len(values):
                # Generated keys start after the largest real one, so no synthetic row reuses a real key.
                st.id_start = int(np.floor(float(values.max()))) + 1
        return st

    @staticmethod
    def _numbers(s: pd.Series, st: ColumnCodecState) -> np.ndarray:
        if st.kind == ColumnKind.DATETIME.value:
            stamps = pd.to_datetime(s, format=st.datetime_format) if st.datetime_format else pd.to_datetime(s)
            if getattr(stamps.dt, "tz", None) is not None:
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            out = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
            out[stamps.isna().to_numpy()] = np.nan
            return out
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    # ----------------------------------------------------------- accessors
    def _require(self) -> list[ColumnCodecState]:
        if self.columns_ is None:
            raise NotFittedError("This TableCodec is not fitted yet: call fit(data, schema) first.")
        return self.columns_

    def column(self, name: str) -> ColumnCodecState:
        self._require()
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"Unknown column {name!r}.") from None

    @property
    def modelled_columns(self) -> list[ColumnCodecState]:
        skip = (ColumnKind.IDENTIFIER.value, ColumnKind.CONSTANT.value)
        return [c for c in self._require() if c.kind not in skip]

    def categories(self, column: str) -> list[Any]:
        """The labels of a categorical/boolean column in code order (pooled rare values excluded)."""
        return list(self.column(column).categories)

    def category_frequencies(self, column: str) -> np.ndarray:
        """Training share of each code, in code order (the pooled rare code last, if any)."""
        return np.asarray(self.column(column).frequencies, dtype=np.float64)

    def category_code(self, column: str, value: Any) -> int:
        """The code of ``value`` in ``column``; raises ``InvalidConditionError`` listing the valid values."""
        st = self.column(column)
        value = _json_scalar(value)
        for i, label in enumerate(st.categories):
            # True == 1 in Python; a boolean must not match an integer label or the reverse.
            if label == value and isinstance(label, bool) == isinstance(value, bool):
                return i
        if st.pooled and value in set(st.pooled_values):
            raise InvalidConditionError(
                f"{value!r} is one of the {len(st.pooled_values)} rare values of column {column!r} that are pooled "
                f"together (the column has more than {self.max_categories} distinct values), so it cannot be "
                "conditioned on. Fit with a larger max_categories to keep it."
            )
        shown = ", ".join(repr(v) for v in st.categories[:50])
        more = f", ... ({len(st.categories)} in all)" if len(st.categories) > 50 else ""
        raise InvalidConditionError(f"Unknown value {value!r} for column {column!r}. Valid values: {shown}{more}.")

    def numeric_range(self, column: str) -> tuple[float, float]:
        """The ``(min, max)`` seen in training, in numeric-frame units (epoch seconds for datetimes)."""
        st = self.column(column)
        if st.low is None:
            return (float("nan"), float("nan"))
        return (st.low, st.high)

    # ----------------------------------------------------------- transform
    def numeric_fit_sample(self, data: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
        """The numeric frame of at most ``max_rows`` rows of ``data`` drawn at random (kept in order).

        What the encoders fit their per-column normalisers on: the category lists
        come from every row (:meth:`fit`), the numeric distributions from a
        sample, which bounds the fit time on large tables.
        """
        if len(data) > max_rows:
            data = data.iloc[np.sort(rng.choice(len(data), size=max_rows, replace=False))]
        return self.to_numeric(data)

    def to_numeric(self, data: pd.DataFrame) -> pd.DataFrame:
        """The numeric frame of ``data`` (float64, NaN for missing)."""
        out: dict[str, np.ndarray] = {}
        for st in self.modelled_columns:
            s = data[st.name]
            if st.kind in (ColumnKind.CATEGORICAL.value, ColumnKind.BOOLEAN.value):
                out[st.name] = self._codes(s, st)
            else:
                out[st.name] = self._numbers(s, st)
        return pd.DataFrame(out, index=data.index)

    @staticmethod
    def _codes(s: pd.Series, st: ColumnCodecState) -> np.ndarray:
        as_obj = s.astype(object).map(_json_scalar) if s.dtype != object else s
        codes = pd.Categorical(as_obj, categories=pd.Index(st.categories, dtype=object)).codes.astype(np.float64)
        unknown = (codes < 0) & s.notna().to_numpy()
        codes[codes < 0] = np.nan
        if st.pooled:
            codes[unknown] = len(st.categories)
        return codes

    # ----------------------------------------------------- inverse transform
    def from_numeric(
        self,
        frame: pd.DataFrame | Mapping[str, np.ndarray],
        *,
        rng: np.random.Generator,
        row_offset: int = 0,
        num_rows: int | None = None,
    ) -> pd.DataFrame:
        """The raw table of a numeric frame: original columns, order, dtypes and labels.

        ``frame`` may be a DataFrame or a mapping of column to array; a mapping
        states ``num_rows`` (it may hold no column at all when every column is an identifier or a constant).
        """
        n = len(frame) if num_rows is None else int(num_rows)
        out: dict[str, Any] = {}
        for st in self._require():
            if st.kind == ColumnKind.IDENTIFIER.value:
                out[st.name] = self.identifier_values(st.name, start=row_offset, count=n)
            elif st.kind == ColumnKind.CONSTANT.value:
                out[st.name] = self._constant(st, n, rng)
            elif st.kind in (ColumnKind.CATEGORICAL.value, ColumnKind.BOOLEAN.value):
                out[st.name] = self._labels(np.asarray(frame[st.name], dtype=np.float64), st, rng)
            else:
                out[st.name] = self._decode_number(np.asarray(frame[st.name], dtype=np.float64), st)
        return pd.DataFrame(out)

    def _decode_number(self, x: np.ndarray, st: ColumnCodecState) -> Any:
        missing = np.isnan(x)
        if st.low is not None:
            x = np.clip(x, st.low, st.high)
        if st.kind == ColumnKind.DATETIME.value:
            step = st.time_step_ns
            ns = (np.round(np.nan_to_num(x) * (1e9 / step)).astype(np.int64)) * step
            stamps = pd.Series(ns.astype("datetime64[ns]"))
            stamps[missing] = pd.NaT
            if st.datetime_format:
                text = stamps.dt.strftime(st.datetime_format).astype(object)
                text[missing] = None if st.dtype == "object" else np.nan
                return _cast(text, st.dtype)
            return _cast(stamps, st.dtype)
        if st.kind == ColumnKind.INTEGER.value:
            x = np.round(x)
        s = pd.Series(x)
        if missing.any():
            s[missing] = np.nan
        return _cast(s, st.dtype)

    @staticmethod
    def _constant(st: ColumnCodecState, n: int, rng: np.random.Generator) -> Any:
        values = pd.Series([st.constant] * n, dtype=object)
        if st.null_rate > 0 and st.constant is not None:
            values[rng.random(n) < st.null_rate] = None
        if st.constant is None:
            return pd.Series(np.full(n, np.nan)).astype(st.dtype) if st.dtype != "object" else values
        if "datetime" in st.dtype:
            return pd.to_datetime(values)
        return _cast(values, st.dtype)

    def _labels(self, codes: np.ndarray, st: ColumnCodecState, rng: np.random.Generator) -> Any:
        missing = np.isnan(codes)
        idx = np.clip(np.nan_to_num(np.round(codes), nan=0).astype(np.int64), 0, st.num_codes - 1)
        table = np.empty(st.num_codes, dtype=object)
        table[: len(st.categories)] = st.categories
        labels = table[idx]
        if st.pooled:
            rare = (idx == len(st.categories)) & ~missing
            if rare.any():
                p = np.asarray(st.pooled_counts, dtype=np.float64)
                pool = np.empty(len(st.pooled_values), dtype=object)
                pool[:] = st.pooled_values
                labels[rare] = pool[rng.choice(len(pool), size=int(rare.sum()), p=p / p.sum())]
        labels[missing] = None
        s = pd.Series(labels, dtype=object)
        if st.dtype == "category":
            if st.dtype_categories is not None:
                return pd.Categorical(s, categories=pd.Index(st.dtype_categories), ordered=st.dtype_ordered)
            return pd.Categorical(s, categories=pd.Index(st.categories + list(st.pooled_values), dtype=object))
        if st.dtype == "bool" and missing.any():
            return s
        return _cast(s, st.dtype)

    def identifier_values(self, column: str, *, start: int, count: int) -> Any:
        """``count`` unique identifiers of ``column``'s style for rows ``start .. start + count - 1``.

        Row ``i`` gets number ``id_start + i``, where ``id_start`` follows the
        largest key seen in training, so shards with distinct row offsets never
        collide with each other or with a real key.
        """
        st = self.column(column)
        numbers = np.arange(st.id_start + start, st.id_start + start + count, dtype=np.int64)
        if st.id_prefix is None:
            return _cast(pd.Series(numbers), st.dtype)
        text = pd.Series(numbers).astype(str)
        if st.id_width:
            text = text.str.zfill(st.id_width)
        return _cast(st.id_prefix + text, st.dtype)

    # --------------------------------------------------------------- state
    def to_dict(self) -> dict[str, Any]:
        return {"max_categories": self.max_categories, "columns": [asdict(c) for c in self._require()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TableCodec":
        codec = cls(max_categories=int(d["max_categories"]))
        codec.columns_ = [ColumnCodecState(**c) for c in d["columns"]]
        codec._index = {c.name: c for c in codec.columns_}
        return codec


def _cast(s: pd.Series, dtype: str) -> Any:
    """Cast to the original dtype; an integer column with generated nulls becomes nullable Int64."""
    try:
        if dtype.startswith(("int", "uint")) and s.isna().any():
            return s.astype("Int64")
        if dtype == "bool" and s.isna().any():
            return s.astype("boolean")
        return s.astype(dtype)
    except (TypeError, ValueError):
        return s
