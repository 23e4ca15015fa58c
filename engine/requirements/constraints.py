"""Constraints: rules declared by the user that hold on every output row.

Each constraint is a small typed object with ``validate(schema)``,
``fit(table)`` (learn what it needs, e.g. the valid combinations) and
``apply(table, rng, fixed=...)`` (make every row satisfy it, vectorised).
Spec form, as in a YAML/JSON requirements file::

    - {type: bounds, column: age, low: 18, high: 90}
    - {type: integer, column: hours-per-week}
    - {type: inequality, low: start_date, high: end_date}
    - {type: fixed_combinations, columns: [relationship, sex]}
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.errors import InvalidConstraintError
from engine.schema.kinds import ColumnKind, TableSchema

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
    """``low <= column <= high`` on a numeric column (values outside are clipped)."""

    type: ClassVar[str] = "bounds"
    column: str
    low: float | None = None
    high: float | None = None

    def validate(self, schema: TableSchema) -> None:
        _require(schema, self.column, (ColumnKind.CONTINUOUS, ColumnKind.INTEGER), "bounds")
        if self.low is None and self.high is None:
            raise InvalidConstraintError(f"The bounds constraint on {self.column!r} needs 'low', 'high' or both.")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise InvalidConstraintError(
                f"The bounds constraint on {self.column!r} has low={self.low} above high={self.high}."
            )

    def fit(self, table: pd.DataFrame) -> None:
        pass

    def apply(self, table: pd.DataFrame, rng: np.random.Generator, fixed: Sequence[str] = ()) -> pd.DataFrame:
        col = table[self.column]
        table[self.column] = col.clip(lower=self.low, upper=self.high).astype(col.dtype)
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
            table.loc[bad, self.low] = table.loc[bad, self.high].to_numpy()
            table.loc[bad, self.high] = lo
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


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


def _same(a: Any, b: Any) -> bool:
    return _json_value(a) == _json_value(b)


CONSTRAINT_TYPES: dict[str, type] = {c.type: c for c in (Bounds, Integer, Inequality, FixedCombinations)}
Constraint = Bounds | Integer | Inequality | FixedCombinations


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


def apply_constraints(
    table: pd.DataFrame, constraints: Sequence[Constraint], rng: np.random.Generator, fixed: Sequence[str] = ()
) -> pd.DataFrame:
    """Make every row satisfy every constraint (in declaration order)."""
    for c in constraints:
        table = c.apply(table, rng, fixed)
    return table
