"""Sampling conditions: what the user asks the output rows to satisfy.

Accepted forms, per column::

    {"income": " >50K"}                      # one category (or boolean value)
    {"age": {"between": [30, 50]}}           # a closed range of a numeric/datetime column
    {"age": {">=": 30}}, {"age": {"<=": 50}}  # half-open ranges (">" and "<" too)
    {"age": 40}                              # equality on an integer column

Category conditions are met by the model itself where it can (CTGAN's
conditional vector, the copula's conditional Gaussian); ranges, and categories
a model cannot condition on, are met by rejection with a bounded number of
attempts. Every condition is validated against the fitted schema up front, with
an error that lists what is valid.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidConditionError
from engine.tabular.schema.kinds import ColumnKind, TableSchema

_RANGE_KEYS = ("between", ">=", "<=", ">", "<", "==")


@dataclass(frozen=True)
class CategoryCondition:
    """Every output row has ``column == value``."""

    column: str
    value: Any


@dataclass(frozen=True)
class RangeCondition:
    """Every output row has ``low <(=) column <(=) high`` (bounds in the column's own units)."""

    column: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def mask(self, values: pd.Series) -> np.ndarray:
        """Rows of ``values`` (numeric or datetime) that satisfy the range; nulls never do."""
        x = _as_number(values)
        ok = ~np.isnan(x)
        if self.low is not None:
            ok &= (x >= self.low) if self.low_inclusive else (x > self.low)
        if self.high is not None:
            ok &= (x <= self.high) if self.high_inclusive else (x < self.high)
        return ok


Condition = CategoryCondition | RangeCondition


@dataclass(frozen=True)
class Conditions:
    """A validated set of conditions, at most one per column."""

    categories: tuple[CategoryCondition, ...] = ()
    ranges: tuple[RangeCondition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.categories or self.ranges)

    @property
    def columns(self) -> list[str]:
        return [c.column for c in self.categories] + [r.column for r in self.ranges]

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of a decoded table that satisfy every condition."""
        ok = np.ones(len(frame), dtype=bool)
        for c in self.categories:
            ok &= _equals(frame[c.column], c.value)
        for r in self.ranges:
            ok &= r.mask(frame[r.column])
        return ok


def _as_number(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values) or values.dtype == object:
        if pd.api.types.is_datetime64_any_dtype(values):
            stamps = values
        else:
            stamps = pd.to_datetime(values, errors="coerce")
        out = stamps.astype("int64").to_numpy().astype(np.float64) / 1e9
        out[stamps.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _equals(values: pd.Series, value: Any) -> np.ndarray:
    return (values == value).fillna(False).to_numpy(dtype=bool)


def _to_bound(column: str, kind: ColumnKind, raw: Any) -> float:
    """A bound in the column's numeric units (epoch seconds for datetimes)."""
    if kind == ColumnKind.DATETIME:
        try:
            return pd.Timestamp(raw).value / 1e9
        except (ValueError, TypeError):
            raise InvalidConditionError(
                f"The bound {raw!r} for datetime column {column!r} is not a date or time "
                "(expected e.g. '2020-01-31' or '2020-01-31T12:00')."
            ) from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, np.integer, np.floating)):
        raise InvalidConditionError(f"The bound {raw!r} for numeric column {column!r} must be a number.")
    if not math.isfinite(float(raw)):
        raise InvalidConditionError(f"The bound {raw!r} for column {column!r} must be finite.")
    return float(raw)


def parse_conditions(
    raw: Mapping[str, Any] | None,
    schema: TableSchema,
    *,
    category_code: Callable[[str, Any], int],
    numeric_range: Callable[[str], tuple[float, float]],
) -> Conditions:
    """Validate user conditions against a fitted schema.

    Args:
        raw: the user's ``{column: condition}`` mapping (``None`` for none).
        schema: the fitted table schema.
        category_code: the fitted codec's lookup; raises ``InvalidConditionError``
            listing the valid values for an unknown category.
        numeric_range: the observed ``(min, max)`` of a numeric column, in its
            numeric units; a range outside it cannot be met.
    """
    if raw is None:
        return Conditions()
    if not isinstance(raw, Mapping):
        raise InvalidConditionError(
            f"Conditions must be a mapping of column name to value or range; got {type(raw).__name__}."
        )
    categories: list[CategoryCondition] = []
    ranges: list[RangeCondition] = []
    for column, spec in raw.items():
        if column not in schema:
            raise InvalidConditionError(
                f"Unknown column {column!r} in the conditions. Valid columns are: "
                + ", ".join(repr(n) for n in schema.names)
                + "."
            )
        kind = schema[column].kind
        if kind in (ColumnKind.IDENTIFIER, ColumnKind.CONSTANT):
            raise InvalidConditionError(
                f"Column {column!r} is a {kind.value} column: it is regenerated, not modelled, "
                "so it cannot be conditioned on."
            )
        if kind.is_discrete:
            if isinstance(spec, Mapping):
                raise InvalidConditionError(
                    f"Column {column!r} is {kind.value}: condition it on one value, e.g. "
                    f"{{{column!r}: <value>}}, not a range."
                )
            category_code(column, spec)  # raises with the list of valid values
            categories.append(CategoryCondition(column, spec))
            continue
        ranges.append(_parse_range(column, kind, spec, numeric_range(column)))
    return Conditions(tuple(categories), tuple(ranges))


def _parse_range(column: str, kind: ColumnKind, spec: Any, observed: tuple[float, float]) -> RangeCondition:
    if not isinstance(spec, Mapping):
        if kind == ColumnKind.CONTINUOUS:
            raise InvalidConditionError(
                f"Column {column!r} is continuous: an exact value is almost never generated. "
                f"Give a range instead, e.g. {{{column!r}: {{'between': [low, high]}}}}."
            )
        spec = {"==": spec}
    unknown = [k for k in spec if k not in _RANGE_KEYS]
    if unknown or not spec:
        raise InvalidConditionError(
            f"The condition on {column!r} has unknown operator(s) {unknown}; valid operators are "
            + ", ".join(repr(k) for k in _RANGE_KEYS)
            + "."
        )
    low = high = None
    low_inc = high_inc = True
    if "between" in spec:
        pair = spec["between"]
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidConditionError(f"'between' for column {column!r} takes a list [low, high]; got {pair!r}.")
        low, high = (_to_bound(column, kind, b) for b in pair)
    if "==" in spec:
        low = high = _to_bound(column, kind, spec["=="])
    for key, is_low, inclusive in ((">=", True, True), (">", True, False), ("<=", False, True), ("<", False, False)):
        if key in spec:
            b = _to_bound(column, kind, spec[key])
            if is_low:
                low, low_inc = (b, inclusive) if low is None or b >= low else (low, low_inc)
            else:
                high, high_inc = (b, inclusive) if high is None or b <= high else (high, high_inc)
    cond = RangeCondition(column, low, high, low_inc, high_inc)
    _check_not_empty(column, kind, cond, observed)
    return cond


def _check_not_empty(column: str, kind: ColumnKind, c: RangeCondition, observed: tuple[float, float]) -> None:
    lo, hi = observed
    lo_eff = -math.inf if c.low is None else c.low
    hi_eff = math.inf if c.high is None else c.high
    empty = lo_eff > hi_eff or (lo_eff == hi_eff and not (c.low_inclusive and c.high_inclusive))
    if kind == ColumnKind.INTEGER and not empty and math.isfinite(lo_eff) and math.isfinite(hi_eff):
        first = math.ceil(lo_eff) if c.low_inclusive else math.floor(lo_eff) + 1
        last = math.floor(hi_eff) if c.high_inclusive else math.ceil(hi_eff) - 1
        empty = first > last
    if empty:
        raise InvalidConditionError(f"The range condition on {column!r} is empty ({_describe(c)}): no value satisfies it.")
    outside = hi_eff < lo or lo_eff > hi or (hi_eff == lo and not c.high_inclusive) or (lo_eff == hi and not c.low_inclusive)
    if outside:
        raise InvalidConditionError(
            f"The range condition on {column!r} ({_describe(c)}) lies outside the values seen in training "
            f"[{lo:g}, {hi:g}]; the synthesizer never generates values there."
        )


def _describe(c: RangeCondition) -> str:
    parts = []
    if c.low is not None:
        parts.append(f"{'>=' if c.low_inclusive else '>'} {c.low:g}")
    if c.high is not None:
        parts.append(f"{'<=' if c.high_inclusive else '<'} {c.high:g}")
    return " and ".join(parts)


def coerce_text_value(column: str, text: Any, labels: list[Any]) -> Any:
    """Map a category typed as text (CLI, query string) onto the column's own label.

    An exact match wins; otherwise a match that ignores surrounding spaces and
    case (so ``income=>50K`` finds the label ``" >50K"``) when it is unique.
    Text that matches nothing is returned unchanged, so validation reports it
    with the list of valid values.
    """
    if not isinstance(text, str):
        return text
    for label in labels:
        if isinstance(label, str) and label == text:
            return label
    loose = [label for label in labels if str(label).strip().lower() == text.strip().lower()]
    return loose[0] if len(loose) == 1 else text
