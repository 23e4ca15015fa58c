"""The sequence encoder: user data (panel, windows of one series, wide array) <-> padded arrays a model learns.

Encoded data (what the models train on) is a dict of equal-length arrays:

- ``x``: float32 ``(N, T, C)``: numeric channels min-max scaled to [-1, 1], categorical
  channels one-hot (as -1/1), and, when the time stamps are irregular, one channel of
  learned gaps (the log of each gap over the median gap, scaled to [-1, 1]);
  Each numeric channel with missing values adds, last, one missing-indicator channel
  (1 where the value is missing, -1 where present), as tables add a missing flag to a
  nullable numeric column: generated steps whose flag is on are missing (NaN), so missing
  values come back at the rate, and in the places, the model learns;
- ``mask``: float32 ``(N, T)``, 1 on real steps and 0 on padding (sequences of
  different lengths are left-aligned and padded at the end);
- ``static``: float32 ``(N, S)``, the static attributes of each sequence (one-hot
  categories, scaled numbers); ``S`` may be 0.

What is not learned by the networks is drawn from the real data: each synthetic
sequence takes a real sequence's *profile* (its static values, its length and its
start time) at random, among those matching the requested conditions. Lengths are
therefore reproduced with their real distribution (and jointly with the static
attributes); time stamps start on real start dates and follow the real frequency, or
the learned gaps when the real stamps are irregular.

Missing numeric values are filled forward then backward within each sequence (then by
the channel's mean) under their missing indicator; a missing category is a category of
its own. A channel that is missing everywhere is refused.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidConditionError, InvalidDataError
from engine.timeseries.io import InputKind, array_to_frame, input_kind

MAX_PROFILES = 5000  # real profiles kept in the artifact (a random subset beyond this)
WINDOW_ID = "sequence_id"  # the column that numbers windows cut from one long series
STEP = "step"  # the step column of long-format output for array input


@dataclass(frozen=True)
class SequenceLayout:
    """Encoded sequences: ``steps`` time steps of ``channels`` model channels, ``static_dim`` static features."""

    steps: int
    channels: int
    static_dim: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "channels": self.channels, "static_dim": self.static_dim}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SequenceLayout:
        return cls(int(d["steps"]), int(d["channels"]), int(d.get("static_dim", 0)))


@dataclass
class EncodedSequences:
    """Encoded sequences and what the encoder read beside them (see the module docs)."""

    x: np.ndarray  # (N, T, C) float32
    mask: np.ndarray  # (N, T) float32
    static: np.ndarray  # (N, S) float32
    lengths: np.ndarray  # (N,) int64
    starts: np.ndarray | None  # (N,) float seconds (or time units) of each first step; None without time column
    static_raw: list[list[Any]]  # (N, num static columns) values as read

    def training_data(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "mask": self.mask, "static": self.static}


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


class SequenceEncoder:
    """Fit on real sequences; turn them into padded arrays and generated arrays back into the user's format.

    Args:
        entity_column: the column naming each sequence of a long-format table (panel data).
            None: a table is one long series, cut into windows.
        time_column: the time stamps (dates or numbers), increasing within each entity; None:
            rows are in time order and carry no stamps.
        static_columns: per-entity attributes (constant within an entity), learned as conditions.
        sequence_length: steps per sequence. Windows of one series: required (default 24).
            Panels: None keeps each entity's length (variable lengths, padded); a length cuts
            longer entities into windows of it and refuses shorter ones.
        stride: steps between window starts (default: 1 for one series, as in the TimeGAN
            paper; ``sequence_length`` for entities of a panel, i.e. no overlap).
        categorical_columns: temporal columns to treat as categories (default: the non-numeric ones).
        numeric_columns: temporal columns that must be numeric (refused, by name, when they are not).
    """

    def __init__(
        self,
        *,
        entity_column: str | None = None,
        time_column: str | None = None,
        static_columns: Sequence[str] = (),
        sequence_length: int | None = None,
        stride: int | None = None,
        categorical_columns: Sequence[str] | None = None,
        numeric_columns: Sequence[str] | None = None,
    ):
        self.entity_column = entity_column
        self.time_column = time_column
        self.static_columns = [static_columns] if isinstance(static_columns, str) else list(static_columns or ())
        self.sequence_length = sequence_length
        self.stride = stride
        self.categorical_columns = None if categorical_columns is None else list(categorical_columns)
        self.numeric_columns = None if numeric_columns is None else list(numeric_columns)

    # ------------------------------------------------------------------ reading
    def _frame(self, data: pd.DataFrame | np.ndarray) -> tuple[InputKind, pd.DataFrame, list[np.ndarray]]:
        """The input as one table and, per sequence, the row positions of its steps in time order."""
        kind = input_kind(data, self.entity_column)
        if kind == "array":
            a = np.asarray(data, dtype=np.float64)
            n, t, c = a.shape
            if n == 0 or t == 0 or c == 0:
                raise InvalidDataError(f"The (n, T, channels) array is empty (shape {a.shape}).")
            if self.static_columns or self.time_column:
                raise InvalidDataError("static_columns and time_column apply to tables; an (n, T, channels) array has neither.")
            # Trailing steps that are NaN in every channel are padding.
            real = ~np.isnan(a).all(axis=2)
            lengths = np.where(real.any(axis=1), t - np.argmax(real[:, ::-1], axis=1), 0)
            if (lengths == 0).any():
                raise InvalidDataError(f"Sequence {int(np.argmax(lengths == 0))} of the array is NaN at every step.")
            frame = pd.DataFrame({f"c{i}": a[:, :, i].reshape(-1) for i in range(c)})
            return kind, frame, [np.arange(i * t, i * t + lengths[i]) for i in range(n)]
        frame = array_to_frame(data) if isinstance(data, np.ndarray) else data.reset_index(drop=True)
        if len(frame) == 0:
            raise InvalidDataError("The time-series table has no rows.")
        for role, col in (("time", self.time_column), ("entity", self.entity_column)):
            if col is not None and col not in frame.columns:
                raise InvalidDataError(f"The {role} column {col!r} is not in the data; its columns are {list(map(str, frame.columns))}.")
        missing = [c for c in self.static_columns if c not in frame.columns]
        if missing:
            raise InvalidDataError(f"The static column {missing[0]!r} is not in the data; its columns are {list(map(str, frame.columns))}.")
        if kind == "windows":
            if self.static_columns:
                raise InvalidDataError(
                    "static_columns need an entity_column: one long series has one set of static values, nothing to learn."
                )
            length = self.sequence_length or 24
            stride = self.stride or 1
            if len(frame) < length:
                raise InvalidDataError(f"The series has {len(frame)} steps, fewer than sequence_length={length}.")
            self._check_increasing(frame, np.arange(len(frame)), "the series")
            starts = range(0, len(frame) - length + 1, stride)
            return kind, frame, [np.arange(s, s + length) for s in starts]
        groups = frame.groupby(self.entity_column, sort=False, dropna=False).indices
        sequences: list[np.ndarray] = []
        for entity, rows in groups.items():
            entity, rows = _json_value(entity), np.asarray(rows)
            if self.time_column is not None:
                self._check_increasing(frame, rows, f"entity {entity!r}")
            if self.sequence_length is None:
                sequences.append(rows)
                continue
            if len(rows) < self.sequence_length:
                raise InvalidDataError(
                    f"Entity {entity!r} (column {self.entity_column!r}) has {len(rows)} time steps, fewer than "
                    f"sequence_length={self.sequence_length}; drop it or lower sequence_length."
                )
            stride = self.stride or self.sequence_length
            for s in range(0, len(rows) - self.sequence_length + 1, stride):
                sequences.append(rows[s : s + self.sequence_length])
        for col in self.static_columns:
            varies = frame.groupby(self.entity_column, sort=False, dropna=False)[col].nunique(dropna=False)
            if (varies > 1).any():
                raise InvalidDataError(
                    f"The static column {col!r} changes within entity {_json_value(varies.index[int(np.argmax(varies.to_numpy() > 1))])!r}; "
                    f"a static attribute has one value per entity (make it a temporal column instead)."
                )
        return kind, frame, sequences

    def _times(self, frame: pd.DataFrame) -> np.ndarray:
        """The time column as float (seconds for dates), or an error naming it."""
        col = frame[self.time_column]
        if pd.api.types.is_datetime64_any_dtype(col):
            if getattr(col.dt, "tz", None) is not None:
                col = col.dt.tz_convert(None)
            return col.to_numpy("datetime64[ns]").astype(np.int64) / 1e9
        if _is_numeric(col):
            return col.to_numpy(np.float64)
        try:
            parsed = pd.to_datetime(col)
        except (ValueError, TypeError):
            raise InvalidDataError(
                f"The time column {self.time_column!r} must hold dates or numbers; cannot read {col.iloc[0]!r} as either."
            ) from None
        return parsed.to_numpy("datetime64[ns]").astype(np.int64) / 1e9

    def _check_increasing(self, frame: pd.DataFrame, rows: np.ndarray, what: str) -> None:
        if self.time_column is None:
            return
        t = self._times(frame.iloc[rows])
        if np.isnan(t).any():
            raise InvalidDataError(f"The time column {self.time_column!r} is missing in {what}.")
        bad = np.flatnonzero(np.diff(t) <= 0)
        if len(bad):
            raise InvalidDataError(
                f"The time column {self.time_column!r} is not increasing within {what}: step {int(bad[0]) + 1} "
                f"({frame[self.time_column].iloc[rows[bad[0] + 1]]!r}) does not come after {frame[self.time_column].iloc[rows[bad[0]]]!r}. "
                f"Sort the rows by time (and remove duplicate time stamps)."
            )

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame | np.ndarray) -> SequenceEncoder:
        """Learn the channels, scales, categories, time gaps and real profiles of ``data``."""
        kind, frame, sequences = self._frame(data)
        self.kind_: InputKind = kind
        self.columns_ = [str(c) for c in frame.columns]
        reserved = {self.entity_column, self.time_column, *self.static_columns}
        temporal = [c for c in frame.columns if c not in reserved]
        if not temporal:
            raise InvalidDataError("The data has no temporal columns: every column is the entity, the time or static.")
        declared_numeric = set(self.numeric_columns or ())
        declared_cat = set(self.categorical_columns or ())
        for col in declared_numeric | declared_cat:
            if col not in frame.columns:
                raise InvalidDataError(f"The column {col!r} is not in the data; its columns are {self.columns_}.")
        self.numeric_: list[str] = []
        self.categorical_: list[str] = []
        for col in temporal:
            numeric = _is_numeric(frame[col]) and col not in declared_cat
            if col in declared_numeric and not _is_numeric(frame[col]):
                example = frame[col].dropna().iloc[0] if frame[col].notna().any() else None
                raise InvalidDataError(
                    f"The temporal column {col!r} was given as numeric but holds {frame[col].dtype} values such as {example!r}; "
                    f"convert it to numbers or list it in categorical_columns."
                )
            (self.numeric_ if numeric else self.categorical_).append(col)
        for col in self.numeric_:
            if frame[col].isna().all():
                raise InvalidDataError(f"The temporal column {col!r} is missing (NaN) at every step; drop it.")
        num = frame[self.numeric_].to_numpy(np.float64, na_value=np.nan) if self.numeric_ else np.zeros((len(frame), 0))
        self.low_ = np.nanmin(num, axis=0) if self.numeric_ else np.zeros(0)
        self.high_ = np.nanmax(num, axis=0) if self.numeric_ else np.zeros(0)
        self.mean_ = np.nanmean(num, axis=0) if self.numeric_ else np.zeros(0)
        self.scale_ = np.nanstd(num, axis=0) if self.numeric_ else np.zeros(0)  # the anomalies' unit
        self.integer_ = [bool(pd.api.types.is_integer_dtype(frame[c])) for c in self.numeric_]
        # Numeric channels missing somewhere on a real step get a missing-indicator channel.
        steps_rows = np.concatenate(sequences)
        self.nullable_ = [c for c in self.numeric_ if frame[c].iloc[steps_rows].isna().any()]
        self.categories_ = {c: self._categories(frame[c]) for c in self.categorical_}
        self.static_numeric_ = [c for c in self.static_columns if _is_numeric(frame[c])]
        self.static_categories_ = {c: self._categories(frame[c]) for c in self.static_columns if c not in self.static_numeric_}
        st = frame[self.static_numeric_].to_numpy(np.float64) if self.static_numeric_ else np.zeros((len(frame), 0))
        self.static_low_ = np.nanmin(st, axis=0) if self.static_numeric_ else np.zeros(0)
        self.static_high_ = np.nanmax(st, axis=0) if self.static_numeric_ else np.zeros(0)
        self.steps_ = int(self.sequence_length if kind != "array" and self.sequence_length else max(len(s) for s in sequences))
        if kind == "array":
            self.steps_ = int(np.asarray(data).shape[1])
        # Time: a datetime column is written back as dates; gaps constant -> a frequency, else a learned channel.
        self.time_kind_ = None
        self.freq_ = None
        self.gap_median_ = None
        self.gap_range_ = None
        if self.time_column is not None:
            col = frame[self.time_column]
            self.time_kind_ = "numeric" if _is_numeric(col) else "datetime"
            self.time_integer_ = bool(pd.api.types.is_integer_dtype(col))
            t = self._times(frame)
            gaps = np.concatenate([np.diff(t[s]) for s in sequences])
            if len(gaps) == 0:
                self.freq_ = 1.0
            elif np.allclose(gaps, gaps[0], rtol=1e-9, atol=0):
                self.freq_ = float(gaps[0])
            else:
                self.gap_median_ = float(np.median(gaps))
                logs = np.log(gaps / self.gap_median_)
                self.gap_range_ = (float(logs.min()), float(logs.max()))
        self.entity_integer_ = bool(self.entity_column is not None and pd.api.types.is_integer_dtype(frame[self.entity_column]))
        enc = self._encode(frame, sequences)
        # The real profiles (static values, length, start) synthetic sequences are drawn from.
        keep = np.arange(len(enc.lengths))
        if len(keep) > MAX_PROFILES:
            keep = np.sort(np.random.default_rng(0).choice(len(keep), MAX_PROFILES, replace=False))
        self.profiles_ = {
            "static": [[_json_value(v) for v in enc.static_raw[i]] for i in keep],
            "length": enc.lengths[keep].tolist(),
            "start": None if enc.starts is None else enc.starts[keep].tolist(),
        }
        return self

    @staticmethod
    def _categories(series: pd.Series) -> list[Any]:
        values = [_json_value(v) for v in pd.unique(series.dropna())]
        try:
            values = sorted(values)
        except TypeError:
            values = sorted(values, key=str)
        if series.isna().any():
            values.append(None)
        return values

    # ------------------------------------------------------------------ layout
    @property
    def gap_channel(self) -> bool:
        return self.gap_median_ is not None

    @property
    def num_numeric(self) -> int:
        return len(self.numeric_)

    @property
    def layout(self) -> SequenceLayout:
        channels = len(self.numeric_) + sum(len(v) for v in self.categories_.values()) + int(self.gap_channel) + len(self.nullable_)
        static = len(self.static_numeric_) + sum(len(v) for v in self.static_categories_.values())
        return SequenceLayout(steps=self.steps_, channels=channels, static_dim=static)

    # ------------------------------------------------------------------ encode
    def transform(self, data: pd.DataFrame | np.ndarray) -> EncodedSequences:
        """Encode data of the fitted format (e.g. real data to evaluate against)."""
        kind, frame, sequences = self._frame(data)
        if kind != self.kind_:
            raise InvalidDataError(f"This encoder was fitted on {self.kind_} input; got {kind} input.")
        missing = [c for c in self.numeric_ + self.categorical_ if c not in frame.columns]
        if missing:
            raise InvalidDataError(f"The temporal column {missing[0]!r} is not in the data.")
        return self._encode(frame, sequences)

    def _encode(self, frame: pd.DataFrame, sequences: list[np.ndarray]) -> EncodedSequences:
        n, steps = len(sequences), self.steps_
        lengths = np.array([min(len(s), steps) for s in sequences], dtype=np.int64)
        index = np.full((n, steps), -1, dtype=np.int64)
        for i, rows in enumerate(sequences):
            index[i, : lengths[i]] = rows[:steps]
        valid = index >= 0
        safe = np.where(valid, index, 0)
        blocks = []
        if self.numeric_:
            num = frame[self.numeric_].to_numpy(np.float64, na_value=np.nan)[safe]  # (N, T, cn)
            num[~valid] = np.nan
            missing = {col: np.isnan(num[:, :, self.numeric_.index(col)]) & valid for col in self.nullable_}
            # Forward then backward fill along time within each sequence; then the channel mean.
            for c in range(num.shape[2]):
                filled = pd.DataFrame(num[:, :, c].T).ffill().bfill().to_numpy().T
                num[:, :, c] = np.where(np.isnan(filled), self.mean_[c], filled)
            span = np.where(self.high_ > self.low_, self.high_ - self.low_, 1.0)
            blocks.append(2 * (num - self.low_) / span - 1)
        for col, cats in self.categories_.items():
            codes = self._codes(frame[col], cats)[safe]
            blocks.append(2 * np.eye(len(cats))[codes] - 1)
        starts = None
        if self.time_column is not None:
            t = self._times(frame)
            starts = np.array([t[rows[0]] for rows in sequences])
            if self.gap_channel:
                tt = t[safe]
                gaps = np.diff(tt, axis=1, prepend=tt[:, :1])
                low, high = self.gap_range_
                logs = np.log(np.clip(gaps, 1e-12, None) / self.gap_median_)
                scaled = 2 * (logs - low) / (high - low if high > low else 1.0) - 1
                scaled[:, 0] = 0.0  # the first step has no gap
                blocks.append(np.clip(scaled, -1.5, 1.5)[:, :, None])
        for col in self.nullable_:
            blocks.append(np.where(missing[col], 1.0, -1.0)[:, :, None])
        x = np.concatenate(blocks, axis=2) if blocks else np.zeros((n, steps, 0))
        x = np.where(valid[:, :, None], x, 0.0).astype(np.float32)
        first = np.array([rows[0] for rows in sequences])
        static_raw = [list(r) for r in frame[self.static_columns].iloc[first].itertuples(index=False)] if self.static_columns else [[] for _ in range(n)]
        return EncodedSequences(
            x=x, mask=valid.astype(np.float32), static=self.encode_static(static_raw), lengths=lengths, starts=starts,
            static_raw=static_raw,
        )

    @staticmethod
    def _codes(series: pd.Series, cats: list[Any]) -> np.ndarray:
        lookup = {str(c): i for i, c in enumerate(cats)}
        missing = lookup.get("None", 0)
        return np.array([missing if (v is None or (isinstance(v, float) and np.isnan(v))) else lookup.get(str(_json_value(v)), missing)
                         for v in series.tolist()], dtype=np.int64)

    def encode_static(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        """Static values (one list per sequence, in ``static_columns`` order) as the models' float32 ``(N, S)``."""
        n = len(rows)
        parts = []
        for j, col in enumerate(self.static_columns):
            values = [r[j] for r in rows]
            if col in self.static_categories_:
                cats = self.static_categories_[col]
                parts.append(np.eye(len(cats))[self._codes(pd.Series(values, dtype=object), cats)])
            else:
                k = self.static_numeric_.index(col)
                low, high = self.static_low_[k], self.static_high_[k]
                v = np.array([np.nan if x is None else float(x) for x in values])
                v = np.where(np.isnan(v), (low + high) / 2, v)
                parts.append((2 * (v - low) / (high - low if high > low else 1.0) - 1)[:, None])
        return (np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))).astype(np.float32)

    # ------------------------------------------------------------------ profiles
    def check_conditions(self, conditions: Mapping[str, Any] | None) -> dict[str, Any]:
        """``{static column: value}`` checked against what was learned (values typed like the real ones)."""
        if not conditions:
            return {}
        if not isinstance(conditions, Mapping):
            raise InvalidConditionError(f"Time-series conditions are a mapping {{static column: value}}; got {conditions!r}.")
        out = {}
        for col, value in conditions.items():
            if col not in self.static_columns:
                raise InvalidConditionError(
                    f"Cannot condition on {col!r}: conditions name static columns, and the static columns are "
                    f"{self.static_columns or 'none (fit with static_columns=[...])'}."
                )
            if isinstance(value, Mapping):
                raise InvalidConditionError(f"The condition on {col!r} must be one value; got {value!r}.")
            if col in self.static_categories_:
                cats = self.static_categories_[col]
                match = [c for c in cats if str(c) == str(value)]
                if not match:
                    raise InvalidConditionError(
                        f"The static column {col!r} has no value {value!r}; it has {', '.join(map(repr, cats[:20]))}."
                    )
                out[col] = match[0]
            else:
                try:
                    out[col] = float(value)
                except (TypeError, ValueError):
                    raise InvalidConditionError(f"The static column {col!r} is numeric; got {value!r}.") from None
        return out

    def draw_profiles(self, n: int, conditions: Mapping[str, Any], rng: np.random.Generator) -> tuple[list[list[Any]], np.ndarray, np.ndarray | None]:
        """Static values, lengths and start times of ``n`` synthetic sequences, drawn from the real profiles."""
        profiles = self.profiles_
        static = profiles["static"]
        eligible = np.arange(len(static))
        for col, value in conditions.items():
            if col in self.static_categories_:
                j = self.static_columns.index(col)
                chosen = [i for i in eligible if str(static[i][j]) == str(value)]
                if chosen:  # else (a value absent from the kept profiles): other profiles, with the value set
                    eligible = np.asarray(chosen)
        pick = rng.choice(eligible, size=n, replace=True)
        rows = [list(static[i]) for i in pick]
        for col, value in conditions.items():
            j = self.static_columns.index(col)
            for r in rows:
                r[j] = value
        lengths = np.asarray(profiles["length"], dtype=np.int64)[pick]
        starts = None if profiles["start"] is None else np.asarray(profiles["start"], dtype=np.float64)[pick]
        return rows, lengths, starts

    # ------------------------------------------------------------------ decode
    def decode_arrays(self, x: np.ndarray, lengths: np.ndarray, starts: np.ndarray | None) -> dict[str, Any]:
        """Model output ``(n, T, C)`` -> numeric values ``(n, T, cn)``, category codes by column and time stamps ``(n, T)``."""
        x = np.asarray(x, dtype=np.float64)
        n, steps = x.shape[:2]
        pos = 0
        numeric = np.zeros((n, steps, 0))
        if self.numeric_:
            z = np.clip(x[:, :, : self.num_numeric], -1, 1)
            span = np.where(self.high_ > self.low_, self.high_ - self.low_, 1.0)
            numeric = (z + 1) / 2 * span + self.low_
            pos = self.num_numeric
        codes = {}
        for col, cats in self.categories_.items():
            codes[col] = np.argmax(x[:, :, pos : pos + len(cats)], axis=2)
            pos += len(cats)
        times = None
        if self.time_column is not None:
            if self.gap_channel:
                low, high = self.gap_range_
                logs = (np.clip(x[:, :, pos], -1, 1) + 1) / 2 * (high - low) + low
                gaps = self.gap_median_ * np.exp(logs)
                gaps[:, 0] = 0.0
            else:
                gaps = np.full((n, steps), self.freq_)
                gaps[:, 0] = 0.0
            times = (starts if starts is not None else np.zeros(n))[:, None] + np.cumsum(gaps, axis=1)
            pos += int(self.gap_channel)
        for col in self.nullable_:
            k = self.numeric_.index(col)
            numeric[:, :, k] = np.where(x[:, :, pos] > 0, np.nan, numeric[:, :, k])
            pos += 1
        return {"numeric": numeric, "codes": codes, "times": times}

    def _time_values(self, times: np.ndarray) -> Any:
        if self.time_kind_ == "datetime":
            return pd.to_datetime(np.round(times * 1e9).astype(np.int64), unit="ns")
        return np.round(times).astype(np.int64) if self.time_integer_ else times

    def to_frame(
        self, decoded: Mapping[str, Any], lengths: np.ndarray, static_rows: Sequence[Sequence[Any]], *, row_offset: int = 0,
        anomalies: Mapping[str, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """Decoded sequences in long format (one row per step, padding dropped) with the user's columns."""
        numeric, codes, times = decoded["numeric"], decoded["codes"], decoded["times"]
        n, steps = numeric.shape[0], self.steps_
        valid = np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
        seq = np.repeat(np.arange(n), steps).reshape(n, steps)[valid]
        step = np.tile(np.arange(steps), n).reshape(n, steps)[valid]
        out: dict[str, Any] = {}
        if self.kind_ == "panel":
            ids = np.arange(row_offset, row_offset + n)
            out[self.entity_column] = ids[seq] if self.entity_integer_ else np.array([f"synthetic-{i}" for i in ids], dtype=object)[seq]
        elif self.kind_ == "windows":
            out[WINDOW_ID] = (row_offset + seq).astype(np.int64)
        else:
            out[WINDOW_ID] = (row_offset + seq).astype(np.int64)
            out[STEP] = step.astype(np.int64)
        columns = {}
        if times is not None:
            columns[self.time_column] = self._time_values(times[valid])
        for j, col in enumerate(self.static_columns):
            columns[col] = np.array([static_rows[i][j] for i in range(n)], dtype=object)[seq]
            if col in self.static_numeric_:
                columns[col] = columns[col].astype(np.float64)
        for k, col in enumerate(self.numeric_):
            v = numeric[:, :, k][valid]
            if self.integer_[k]:
                # An integer channel with missing values comes back as pandas' nullable Int64.
                columns[col] = pd.array(np.round(v), dtype="Int64") if np.isnan(v).any() or col in self.nullable_ else np.round(v).astype(np.int64)
            else:
                columns[col] = v
        for col, cats in self.categories_.items():
            columns[col] = np.array(cats, dtype=object)[codes[col][valid]]
        ordered = [c for c in self.columns_ if c in columns and c != self.entity_column]
        for c in ordered:
            out[c] = columns[c]
        if anomalies is not None:
            out["is_anomaly"] = anomalies["is_anomaly"][valid]
            out["anomaly_type"] = anomalies["anomaly_type"][valid]
        return pd.DataFrame(out)

    def to_array(self, decoded: Mapping[str, Any], lengths: np.ndarray) -> np.ndarray:
        """Decoded sequences as ``(n, T, channels)`` floats, NaN on the padding of shorter sequences."""
        numeric = np.array(decoded["numeric"], dtype=np.float64)
        numeric[np.arange(self.steps_)[None, :] >= np.asarray(lengths)[:, None]] = np.nan
        return numeric

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_column": self.entity_column, "time_column": self.time_column, "static_columns": self.static_columns,
            "sequence_length": self.sequence_length, "stride": self.stride, "kind": self.kind_, "columns": self.columns_,
            "numeric": self.numeric_, "categorical": self.categorical_, "low": self.low_.tolist(), "high": self.high_.tolist(),
            "mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "integer": self.integer_,
            "categories": self.categories_, "static_numeric": self.static_numeric_, "static_categories": self.static_categories_,
            "static_low": self.static_low_.tolist(), "static_high": self.static_high_.tolist(), "steps": self.steps_,
            "time_kind": self.time_kind_, "time_integer": getattr(self, "time_integer_", False), "freq": self.freq_,
            "gap_median": self.gap_median_, "gap_range": self.gap_range_, "entity_integer": self.entity_integer_,
            "nullable": self.nullable_,
            "profiles": self.profiles_,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SequenceEncoder:
        enc = cls(entity_column=d["entity_column"], time_column=d["time_column"], static_columns=d["static_columns"],
                  sequence_length=d["sequence_length"], stride=d["stride"])
        enc.kind_, enc.columns_ = d["kind"], list(d["columns"])
        enc.numeric_, enc.categorical_ = list(d["numeric"]), list(d["categorical"])
        for key in ("low", "high", "mean", "scale", "static_low", "static_high"):
            setattr(enc, key + "_", np.asarray(d[key], dtype=np.float64))
        enc.integer_ = list(d["integer"])
        enc.categories_ = {k: list(v) for k, v in d["categories"].items()}
        enc.static_numeric_ = list(d["static_numeric"])
        enc.static_categories_ = {k: list(v) for k, v in d["static_categories"].items()}
        enc.steps_, enc.time_kind_, enc.time_integer_ = int(d["steps"]), d["time_kind"], bool(d["time_integer"])
        enc.freq_, enc.gap_median_ = d["freq"], d["gap_median"]
        enc.gap_range_ = None if d["gap_range"] is None else tuple(d["gap_range"])
        enc.entity_integer_, enc.profiles_ = bool(d["entity_integer"]), dict(d["profiles"])
        enc.nullable_ = list(d.get("nullable", []))  # models saved before missing indicators have none
        return enc
