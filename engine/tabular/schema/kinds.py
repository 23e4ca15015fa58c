"""Column kinds and the table schema: what the engine knows about each column.

A schema is plain data: it is saved as JSON inside every model artifact and is
the only thing the evaluation layer needs to know about a table.
"""
from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.core.errors import InvalidSchemaError


class ColumnKind(str, enum.Enum):
    """How a column is modelled."""

    CONTINUOUS = "continuous"  # real numbers
    INTEGER = "integer"  # whole numbers, modelled as continuous then rounded
    CATEGORICAL = "categorical"  # a finite set of labels
    BOOLEAN = "boolean"  # True / False
    DATETIME = "datetime"  # points in time, modelled as numbers
    IDENTIFIER = "identifier"  # unique keys: regenerated, never learned
    CONSTANT = "constant"  # one value (or only nulls): reproduced as is

    @property
    def is_numeric(self) -> bool:
        return self in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME)

    @property
    def is_discrete(self) -> bool:
        return self in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)


@dataclass(frozen=True)
class ColumnSchema:
    """One column of a table.

    Attributes:
        name: the column name as in the source.
        kind: how the column is modelled.
        dtype: the pandas dtype of the source column (``str(series.dtype)``),
            restored exactly on decoding.
        null_rate: share of missing values in the data the schema was inferred
            from; the synthesizer reproduces missing values at this rate.
        datetime_format: for datetime columns read from text, the strftime
            format used to write them back (``None`` keeps a datetime dtype).
    """

    name: str
    kind: ColumnKind
    dtype: str
    null_rate: float = 0.0
    datetime_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ColumnSchema":
        try:
            return cls(
                name=str(d["name"]),
                kind=ColumnKind(d["kind"]),
                dtype=str(d["dtype"]),
                null_rate=float(d.get("null_rate", 0.0)),
                datetime_format=d.get("datetime_format"),
            )
        except KeyError as exc:
            raise InvalidSchemaError(f"A column entry of the schema lacks the field {exc}: {d!r}") from None
        except ValueError:
            valid = ", ".join(k.value for k in ColumnKind)
            raise InvalidSchemaError(
                f"Column {d.get('name')!r} has kind {d.get('kind')!r}; valid kinds are: {valid}."
            ) from None


@dataclass(frozen=True)
class TableSchema:
    """The ordered columns of a table and the row count they were inferred from."""

    columns: tuple[ColumnSchema, ...]
    num_rows: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSchema:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"Unknown column {name!r}; the columns are: {', '.join(map(repr, self.names))}.")

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def of_kind(self, *kinds: ColumnKind) -> list[ColumnSchema]:
        return [c for c in self.columns if c.kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_rows": self.num_rows,
            "columns": [c.to_dict() for c in self.columns],
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TableSchema":
        if not isinstance(d, dict) or not isinstance(d.get("columns"), list):
            raise InvalidSchemaError("A schema document must be a JSON object with a 'columns' list.")
        return cls(
            columns=tuple(ColumnSchema.from_dict(c) for c in d["columns"]),
            num_rows=int(d.get("num_rows", 0)),
            metadata=dict(d.get("metadata", {})),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "TableSchema":
        return cls.from_dict(json.loads(text))
