"""Constraints: rules declared by the user that hold on every output row.

Each constraint is a small typed object with ``validate(schema)``,
``fit(table)`` (learn what it needs, e.g. the valid combinations) and
``apply(table, rng, fixed=...)`` (make every row satisfy it, vectorised).
Spec form, as in a YAML/JSON requirements file::

    - {type: bounds, column: age, low: 18, high: 90}
    - {type: integer, column: hours-per-week}
    - {type: inequality, low: start_date, high: end_date}
    - {type: fixed_combinations, columns: [relationship, sex]}
    - {type: conditional_bounds, where: {tier: premium}, column: credit_limit, low: 5000}
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.core.errors import InvalidConstraintError
from engine.tabular.schema.kinds import ColumnKind, TableSchema

_NUMERIC = (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME)


def _require(schema: TableSchema, column: str, kinds: Sequence[ColumnKind], what: str) -> None:
    if column not in schema:
        raise InvalidConstraintError(
            f"The {what} constraint names unknown column {column!r}; the columns are: "
            + ", ".join(repr(n) for n in schema.names)
            + "."
        )
    kind = schema[column].kind
    if kind not in kinds:
        raise InvalidConstraintError(
            f"The {what} constraint needs column {column!r} to be "
            + " or ".join(k.value for k in kinds)
            + f"; it is {kind.value}."
        )


@dataclass
class Bounds:
    """``low <= column <= high`` on a numeric column (values outside are clipped).

    On a whole-number column (an integer column, or one under an ``integer``
    constraint) the effective bounds are ``ceil(low)`` and ``floor(high)``, so
    clipping never leaves a value below ``low`` once it is rounded.
    """

    type: ClassVar[str] = "bounds"
    column: str
    low: float | None = None
    high: float | None = None
    integer_: bool = False  # set when fitted: the column holds whole numbers

    def validate(self, schema: TableSchema) -> None:
        _require(schema, self.column, (ColumnKind.CONTINUOUS, ColumnKind.INTEGER), "bounds")
        if self.low is None and self.high is None:
            raise InvalidConstraintError(f"The bounds constraint on {self.column!r} needs 'low', 'high' or both.")
        for name in ("low", "high"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or np.isnan(v)):
                raise InvalidConstraintError(
                    f"The {name!r} field of the bounds constraint on {self.column!r} must be a number. Got {v!r} instead."
                )
        if self.low is not None and self.high is not None and self.low > self.high:
            raise InvalidConstraintError(
                f"The bounds constraint on {self.column!r} has low={self.low} above high={self.high}."
            )
        if schema[self.column].kind == ColumnKind.INTEGER:
            self.integer_ = True
        self._check_integer_room()

    def _check_integer_room(self) -> None:
        lo, hi = self._effective()
        if self.integer_ and lo is not None and hi is not None and lo > hi:
            raise InvalidConstraintError(
                f"The bounds constraint on {self.column!r} allows [{self.low}, {self.high}], but the column holds "
                "whole numbers and no whole number lies in that range."
            )

    def _effective(self, whole: bool = False) -> tuple[float | None, float | None]:
        if not (self.integer_ or whole):
            return self.low, self.high
        return (None if self.low is None else float(np.ceil(self.low)), None if self.high is None else float(np.floor(self.high)))

    def fit(self, table: pd.DataFrame) -> None:
        pass

    def apply(self, table: pd.DataFrame, rng: np.random.Generator, fixed: Sequence[str] = ()) -> pd.DataFrame:
        col = table[self.column]
        # An int64 column cast back after clipping truncates toward zero: its bounds are rounded inward too.
        lo, hi = self._effective(whole=pd.api.types.is_integer_dtype(col.dtype))
        table[self.column] = col.clip(lower=lo, upper=hi).astype(col.dtype)
        return table

    def holds(self, table: pd.DataFrame) -> np.ndarray:
        x = pd.to_numeric(table[self.column]).to_numpy(dtype=float, na_value=np.nan)
        ok = np.ones(len(x), dtype=bool)
        if self.low is not None:
            ok &= ~(x < self.low)
        if self.high is not None:
            ok &= ~(x > self.high)
        return ok


@dataclass
class Integer:
    """The column holds whole numbers (rounded half to even)."""

    type: ClassVar[str] = "integer"
    column: str

    def validate(self, schema: TableSchema) -> None:
        _require(schema, self.column, (ColumnKind.CONTINUOUS, ColumnKind.INTEGER), "integer")

    def fit(self, table: pd.DataFrame) -> None:
        pass

    def apply(self, table: pd.DataFrame, rng: np.random.Generator, fixed: Sequence[str] = ()) -> pd.DataFrame:
        col = table[self.column]
        table[self.column] = col.round().astype(col.dtype)
        return table

    def holds(self, table: pd.DataFrame) -> np.ndarray:
        x = pd.to_numeric(table[self.column]).to_numpy(dtype=float, na_value=np.nan)
        return np.isnan(x) | (x == np.round(x))


@dataclass
class Inequality:
    """``low_column <= high_column`` on every row where both are present.

    Violating rows get the two values swapped: this keeps both columns inside
    their learned ranges and leaves the joint distribution of satisfying rows
    untouched.
    """

    type: ClassVar[str] = "inequality"
    low: str
    high: str

    def validate(self, schema: TableSchema) -> None:
        for c in (self.low, self.high):
            _require(schema, c, _NUMERIC, "inequality")
        if schema[self.low].kind.value != schema[self.high].kind.value and ColumnKind.DATETIME in (
            schema[self.low].kind,
            schema[self.high].kind,
        ):
            raise InvalidConstraintError(
                f"The inequality constraint compares {self.low!r} and {self.high!r}: both must be datetimes or both numbers."
            )

    def fit(self, table: pd.DataFrame) -> None:
        pass

    def _violations(self, table: pd.DataFrame) -> np.ndarray:
        return (table[self.low] > table[self.high]).fillna(False).to_numpy(dtype=bool)

    def apply(self, table: pd.DataFrame, rng: np.random.Generator, fixed: Sequence[str] = ()) -> pd.DataFrame:
        bad = self._violations(table)
        if bad.any():
            lo = table.loc[bad, self.low].to_numpy(copy=True)
            hi = table.loc[bad, self.high].to_numpy(copy=True)
            table.loc[bad, self.low] = _like(hi, table[self.low].dtype)
            table.loc[bad, self.high] = _like(lo, table[self.high].dtype)
        return table

    def holds(self, table: pd.DataFrame) -> np.ndarray:
        return ~self._violations(table)


@dataclass
class FixedCombinations:
    """Only combinations of these categorical columns seen in training appear.

    A row with an unseen combination gets a seen one drawn by training
    frequency among those that agree with the conditioned columns (if any),
    else with the first column of the group.
    """

    type: ClassVar[str] = "fixed_combinations"
    columns: list[str]
    combinations_: list[list[Any]] = field(default_factory=list)
    counts_: list[int] = field(default_factory=list)

    def validate(self, schema: TableSchema) -> None:
        if len(self.columns) < 2:
            raise InvalidConstraintError("The fixed_combinations constraint needs at least two columns.")
        for c in self.columns:
            _require(schema, c, (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN), "fixed_combinations")

    def fit(self, table: pd.DataFrame) -> None:
        counts = table[self.columns].astype(object).value_counts(dropna=False, sort=True)
        self.combinations_ = [[_json_value(v) for v in key] for key in counts.index]
        self.counts_ = [int(c) for c in counts.to_numpy()]

    def holds(self, table: pd.DataFrame) -> np.ndarray:
        if not len(table):
            return np.zeros(0, dtype=bool)
        valid = pd.MultiIndex.from_tuples([tuple(c) for c in self.combinations_], names=self.columns)
        rows = pd.MultiIndex.from_frame(table[self.columns].astype(object).where(table[self.columns].notna(), None))
        return np.asarray(rows.isin(valid), dtype=bool)

    def apply(self, table: pd.DataFrame, rng: np.random.Generator, fixed: Sequence[str] = ()) -> pd.DataFrame:
        bad = ~self.holds(table)
        if not bad.any():
            return table
        combos = pd.DataFrame(self.combinations_, columns=self.columns)
        weights = np.asarray(self.counts_, dtype=float)
        anchors = [c for c in self.columns if c in fixed] or [self.columns[0]]
        bad_rows = table.loc[bad, anchors].astype(object)
        # Rows are repaired per distinct anchor value: a handful of groups, each vectorised.
        for key, idx in bad_rows.groupby(anchors, dropna=False).groups.items():
            key = key if isinstance(key, tuple) else (key,)
            match = np.ones(len(combos), dtype=bool)
            for col, val in zip(anchors, key):
                match &= combos[col].map(lambda v, val=val: _same(v, val)).to_numpy(dtype=bool)
            if not match.any():
                match[:] = True
            p = weights * match
            picks = rng.choice(len(combos), size=len(idx), p=p / p.sum())
            for col in self.columns:
                values = combos[col].to_numpy(dtype=object)[picks]
                table.loc[idx, col] = pd.array(values, dtype=object) if table[col].dtype == object else values
        return table


@dataclass
class ConditionalBounds:
    """A rule: rows where every ``where`` column has its value get ``low <= column <= high`` (clipped).

    "Every premium customer has a credit limit above 5000" is
    ``{type: conditional_bounds, where: {tier: premium}, column: credit_limit, low: 5000}``.
    """

    type: ClassVar[str] = "conditional_bounds"
    where: dict[str, Any]
    column: str
    low: float | None = None
    high: float | None = None

    def validate(self, schema: TableSchema) -> None:
        if not isinstance(self.where, Mapping) or not self.where:
            raise InvalidConstraintError(
                f"The conditional_bounds constraint on {self.column!r} needs 'where': a mapping of column to value."
            )
        for c in self.where:
            _require(schema, c, (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN, ColumnKind.INTEGER), "conditional_bounds")
        Bounds(self.column, self.low, self.high).validate(schema)

    def fit(self, table: pd.DataFrame) -> None:
        pass

    def _rows(self, table: pd.DataFrame) -> np.ndarray:
        ok = np.ones(len(table), dtype=bool)
        for c, v in self.where.items():
            ok &= table[c].astype(object).map(lambda x, v=v: _same(x, v)).to_numpy(dtype=bool)
        return ok

    def apply(self, table: pd.DataFrame, rng: np.random.Generator, fixed: Sequence[str] = ()) -> pd.DataFrame:
        rows = self._rows(table)
        if rows.any():
            part = Bounds(self.column, self.low, self.high).apply(table.loc[rows, [self.column]].copy(), rng)
            table.loc[rows, self.column] = part[self.column].to_numpy()
        return table

    def holds(self, table: pd.DataFrame) -> np.ndarray:
        return ~self._rows(table) | Bounds(self.column, self.low, self.high).holds(table)


def _like(values: np.ndarray, dtype: Any) -> np.ndarray:
    """``values`` in a column's own dtype: an integer column gets rounded whole numbers, never floats."""
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_integer_dtype(values.dtype):
        return np.rint(values.astype(np.float64)).astype(np.int64)
    return values


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


def _same(a: Any, b: Any) -> bool:
    return _json_value(a) == _json_value(b)


CONSTRAINT_TYPES: dict[str, type] = {c.type: c for c in (Bounds, Integer, Inequality, FixedCombinations, ConditionalBounds)}
Constraint = Bounds | Integer | Inequality | FixedCombinations | ConditionalBounds


def parse_constraints(specs: Sequence[Mapping[str, Any] | Constraint] | None) -> list[Constraint]:
    """Build constraint objects from dict specs (objects pass through)."""
    out: list[Constraint] = []
    for spec in specs or ():
        if isinstance(spec, tuple(CONSTRAINT_TYPES.values())):
            out.append(spec)
            continue
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise InvalidConstraintError(
                f"Each constraint must be a mapping with a 'type' field; got {spec!r}. Valid types: "
                + ", ".join(CONSTRAINT_TYPES)
                + "."
            )
        kind = spec["type"]
        if kind not in CONSTRAINT_TYPES:
            raise InvalidConstraintError(
                f"Unknown constraint type {kind!r}; valid types are: " + ", ".join(CONSTRAINT_TYPES) + "."
            )
        args = {k: v for k, v in spec.items() if k != "type"}
        try:
            out.append(CONSTRAINT_TYPES[kind](**args))
        except TypeError as exc:
            raise InvalidConstraintError(f"Bad fields for the {kind!r} constraint {dict(spec)!r}: {exc}.") from None
    return out


def constraint_to_dict(c: Constraint) -> dict[str, Any]:
    return {"type": c.type, **asdict(c)}


# Rounds of "apply every constraint" before the rows still violating one are given up on.
_APPLY_ROUNDS = 3


def check_constraints(constraints: Sequence[Constraint], schema: TableSchema) -> None:
    """Validate every constraint against ``schema`` and against each other.

    A bounds constraint on a column that another constraint makes integer
    learns that its column holds whole numbers (see :class:`Bounds`).
    """
    for c in constraints:
        c.validate(schema)
    integer = {c.column for c in constraints if isinstance(c, Integer)}
    for c in constraints:
        if isinstance(c, Bounds) and c.column in integer:
            c.integer_ = True
            c._check_integer_room()


def constraints_hold(table: pd.DataFrame, constraints: Sequence[Constraint]) -> np.ndarray:
    """Rows of ``table`` that satisfy every constraint."""
    ok = np.ones(len(table), dtype=bool)
    for c in constraints:
        ok &= c.holds(table)
    return ok


def apply_constraints(
    table: pd.DataFrame, constraints: Sequence[Constraint], rng: np.random.Generator, fixed: Sequence[str] = ()
) -> pd.DataFrame:
    """Repair rows so that they satisfy the constraints, as far as repairs can (see :func:`repair_constraints`)."""
    return repair_constraints(table, constraints, rng, fixed)[0]


def repair_constraints(
    table: pd.DataFrame, constraints: Sequence[Constraint], rng: np.random.Generator, fixed: Sequence[str] = ()
) -> tuple[pd.DataFrame, np.ndarray]:
    """Repair rows so that they satisfy the constraints; return the table and the rows that hold them all.

    Each repair keeps its own constraint but may break another on the same
    column (an inequality swap can carry a value past a bound or bring a
    fraction into an integer column). So the repairs run in declaration order
    and are repeated, for the rows still violating any constraint, for a few
    rounds; the caller (``generate_rows``) regenerates the rows the returned
    mask marks as still wrong, so the output holds every constraint whatever
    the order or interplay.
    """
    for _ in range(_APPLY_ROUNDS):
        for c in constraints:
            table = c.apply(table, rng, fixed)
        holds = constraints_hold(table, constraints)
        if holds.all():
            break
    return table, holds
