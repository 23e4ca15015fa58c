"""Infer each column's kind from data, apply the user's overrides, and refuse bad columns clearly."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidDataError, InvalidSchemaError
from engine.tabular.schema.io import read_metadata
from engine.tabular.schema.kinds import ColumnKind, ColumnSchema, TableSchema

# Text that parses as dates in these layouts is a datetime column, written back in the same layout.
_DATE_FORMATS = (
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "%Y-%m-%d"),
    (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"), "%Y-%m-%d %H:%M:%S"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"), "%Y-%m-%dT%H:%M:%S"),
    (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"), "%Y-%m-%d %H:%M"),
)
_ID_NAME = re.compile(r"(^|[_\-\s])(id|uuid|key)$|^id[_\-\s]|Id$|ID$", re.IGNORECASE)
MIN_ROWS_FOR_IDENTIFIER = 20


def _type_name(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)):
        return "float"
    if isinstance(v, str):
        return "str"
    return type(v).__name__


def _object_types(values: pd.Series) -> dict[str, Any]:
    """The Python types present in an object column, each with one example value."""
    kinds = values.map(_type_name)
    first = kinds.drop_duplicates()
    return {k: values.loc[i] for i, k in first.items()}


def _datetime_format(text: pd.Series) -> str | None:
    sample = text.head(200)
    for pattern, fmt in _DATE_FORMATS:
        if sample.str.match(pattern).all():
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
            if parsed.notna().all():
                return fmt
    return None


def _infer_kind(name: str, s: pd.Series) -> tuple[ColumnKind, str | None]:
    values = s.dropna()
    if len(values) == 0 or values.nunique(dropna=True) == 1:
        return ColumnKind.CONSTANT, None
    if pd.api.types.is_bool_dtype(s.dtype):
        return ColumnKind.BOOLEAN, None
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return ColumnKind.DATETIME, None
    if isinstance(s.dtype, pd.CategoricalDtype):
        return ColumnKind.CATEGORICAL, None
    if pd.api.types.is_numeric_dtype(s.dtype):
        x = values.to_numpy(dtype=np.float64)
        integral = bool(np.all(x == np.round(x)))
        if integral and values.is_unique and len(values) >= MIN_ROWS_FOR_IDENTIFIER and _ID_NAME.search(name):
            return ColumnKind.IDENTIFIER, None
        return (ColumnKind.INTEGER if integral else ColumnKind.CONTINUOUS), None
    types = _object_types(values)
    if set(types) == {"bool"}:
        return ColumnKind.BOOLEAN, None
    if set(types) == {"str"}:
        fmt = _datetime_format(values)
        if fmt is not None:
            return ColumnKind.DATETIME, fmt
        if values.is_unique and len(values) >= MIN_ROWS_FOR_IDENTIFIER:
            return ColumnKind.IDENTIFIER, None
        return ColumnKind.CATEGORICAL, None
    return ColumnKind.CATEGORICAL, None


def _check_values(name: str, s: pd.Series) -> None:
    """Refuse what no kind can model: mixed Python types, infinities."""
    if s.dtype == object:
        types = _object_types(s.dropna())
        numberish = {"int", "float", "bool"}
        if "str" in types and set(types) & numberish or len(set(types) - numberish - {"str"}) > 0 and len(types) > 1:
            examples = ", ".join(f"{t} (e.g. {v!r})" for t, v in types.items())
            raise InvalidDataError(
                f"Column {name!r} mixes value types: {examples}. Make it one type "
                "(e.g. convert it to text with .astype(str), or to numbers with pd.to_numeric)."
            )
    if pd.api.types.is_float_dtype(s.dtype):
        inf = int(np.isinf(s.to_numpy(dtype=np.float64, na_value=np.nan)).sum())
        if inf:
            raise InvalidDataError(
                f"Column {name!r} holds {inf} infinite value(s) (inf or -inf); replace them with a number or NaN."
            )


def _check_override(name: str, s: pd.Series, kind: ColumnKind) -> str | None:
    """Check that the data can be modelled as the forced kind; return the datetime text format if any."""
    values = s.dropna()
    if kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER):
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            if kind == ColumnKind.INTEGER:
                x = values.to_numpy(dtype=np.float64)
                if not np.all(x == np.round(x)):
                    raise InvalidSchemaError(f"Column {name!r} was declared integer but holds fractional values.")
            return None
        parsed = pd.to_numeric(values, errors="coerce")
        bad = values[parsed.isna()]
        if len(bad):
            raise InvalidSchemaError(
                f"Column {name!r} was declared {kind.value} but {len(bad)} value(s) are not numbers "
                f"(e.g. {bad.iloc[0]!r})."
            )
        return None
    if kind == ColumnKind.DATETIME:
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            return None
        if s.dtype == object and len(values):
            fmt = _datetime_format(values.astype(str))
            if fmt is not None:
                return fmt
        raise InvalidSchemaError(
            f"Column {name!r} was declared datetime but its values are not dates in a known layout "
            "(YYYY-MM-DD, optionally with HH:MM[:SS]); convert it with pd.to_datetime first."
        )
    if kind == ColumnKind.BOOLEAN and values.nunique() > 2:
        raise InvalidSchemaError(f"Column {name!r} was declared boolean but has {values.nunique()} distinct values.")
    return None


def infer_schema(
    data: pd.DataFrame,
    *,
    categorical_columns: Sequence[str] | None = None,
    continuous_columns: Sequence[str] | None = None,
    integer_columns: Sequence[str] | None = None,
    boolean_columns: Sequence[str] | None = None,
    datetime_columns: Sequence[str] | None = None,
    identifier_columns: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> TableSchema:
    """The schema of ``data``: each column's kind, dtype and missing-value rate.

    Inference rules: booleans -> boolean; datetimes (and ISO date text) ->
    datetime; numbers with only whole values -> integer (unique whole numbers in
    a column named like an id -> identifier); other numbers -> continuous;
    text with every value unique -> identifier; other text and pandas
    categories -> categorical; a column with one distinct value, or only
    nulls, -> constant. The ``*_columns`` lists and ``metadata`` force kinds.
    """
    names = list(data.columns)
    bad = [c for c in names if not isinstance(c, str)]
    if bad:
        raise InvalidDataError(
            f"Column names must be text; column {bad[0]!r} is a {type(bad[0]).__name__}. "
            "Rename the columns, e.g. df.columns = df.columns.astype(str)."
        )
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise InvalidDataError(f"Column names must be unique; repeated: {', '.join(map(repr, dupes))}.")

    forced: dict[str, ColumnKind] = {}
    sources: dict[str, str] = {}

    def force(cols: Any, kind: Any, source: str) -> None:
        if cols is None:
            return
        if isinstance(cols, str):
            cols = [cols]
        for col in cols:
            if col not in names:
                raise InvalidSchemaError(
                    f"{source} names column {col!r}, which is not in the data; the columns are: "
                    + ", ".join(map(repr, names))
                    + "."
                )
            try:
                k = ColumnKind(kind)
            except ValueError:
                valid = ", ".join(k.value for k in ColumnKind)
                raise InvalidSchemaError(f"{source} gives column {col!r} the kind {kind!r}; valid kinds: {valid}.") from None
            if col in forced and forced[col] != k:
                raise InvalidSchemaError(
                    f"Column {col!r} is declared both {forced[col].value} ({sources[col]}) and {k.value} ({source})."
                )
            forced[col], sources[col] = k, source

    for col, kind in read_metadata(metadata).items():
        force([col], kind, "metadata")
    force(categorical_columns, ColumnKind.CATEGORICAL, "categorical_columns")
    force(continuous_columns, ColumnKind.CONTINUOUS, "continuous_columns")
    force(integer_columns, ColumnKind.INTEGER, "integer_columns")
    force(boolean_columns, ColumnKind.BOOLEAN, "boolean_columns")
    force(datetime_columns, ColumnKind.DATETIME, "datetime_columns")
    force(identifier_columns, ColumnKind.IDENTIFIER, "identifier_columns")

    columns = []
    for name in names:
        s = data[name]
        if name not in forced or forced[name] not in (ColumnKind.CATEGORICAL, ColumnKind.IDENTIFIER):
            _check_values(name, s)
        if name in forced:
            kind, fmt = forced[name], _check_override(name, s, forced[name])
        else:
            kind, fmt = _infer_kind(name, s)
        columns.append(
            ColumnSchema(
                name=name,
                kind=kind,
                dtype=str(s.dtype),
                null_rate=float(s.isna().mean()),
                datetime_format=fmt,
            )
        )
    return TableSchema(columns=tuple(columns), num_rows=len(data))


def validate_table(data: pd.DataFrame, schema: TableSchema) -> None:
    """Check that ``data`` fits ``schema`` (e.g. real data given to an evaluator).

    Raises ``InvalidDataError`` naming the column when a schema column is absent,
    a numeric column holds text, or a datetime column holds values that are not dates.
    """
    missing = [c for c in schema.names if c not in data.columns]
    if missing:
        raise InvalidDataError(
            f"The table lacks column(s) {', '.join(map(repr, missing))} of the schema; it has: "
            + ", ".join(map(repr, data.columns))
            + "."
        )
    for col in schema.columns:
        s = data[col.name]
        values = s.dropna()
        if col.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER) and not pd.api.types.is_numeric_dtype(s.dtype):
            bad = values[pd.to_numeric(values, errors="coerce").isna()]
            if len(bad):
                raise InvalidDataError(
                    f"Column {col.name!r} should hold numbers ({col.kind.value}) but {len(bad)} value(s) are not "
                    f"numbers (e.g. {bad.iloc[0]!r})."
                )
        if col.kind == ColumnKind.DATETIME and not pd.api.types.is_datetime64_any_dtype(s.dtype):
            parsed = pd.to_datetime(values, format=col.datetime_format, errors="coerce")
            bad = values[parsed.isna()]
            if len(bad):
                layout = f" in the layout {col.datetime_format!r}" if col.datetime_format else ""
                raise InvalidDataError(
                    f"Column {col.name!r} should hold dates{layout} but {len(bad)} value(s) are not dates "
                    f"(e.g. {bad.iloc[0]!r})."
                )
