"""Reading user tables: DataFrames, Arrow tables, CSV and Parquet files, with clear errors."""
from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from engine.core.errors import InvalidDataError, InvalidSchemaError

SUPPORTED = (".csv", ".csv.gz", ".parquet", ".pq")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".csv.gz" if name.endswith(".csv.gz") else path.suffix.lower()


def read_table(source: Any) -> pd.DataFrame:
    """Return ``source`` as a pandas DataFrame.

    ``source`` is a DataFrame, a pyarrow Table, or the path of a CSV (``.csv``,
    ``.csv.gz``) or Parquet file or of a folder of Parquet files. An empty
    table (no rows or no columns) is refused.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
        where = "the DataFrame"
    elif isinstance(source, pa.Table):
        frame = source.to_pandas()
        where = "the Arrow table"
    elif isinstance(source, (str, os.PathLike)):
        frame = _read_path(str(source))
        where = f"{str(source)!r}"
    else:
        raise InvalidDataError(
            "The data must be a pandas DataFrame, a pyarrow Table, or the path of a CSV/Parquet file; "
            f"got {type(source).__name__}."
        )
    if frame.shape[1] == 0:
        raise InvalidDataError(f"The table in {where} is empty: it has no columns.")
    if frame.shape[0] == 0:
        raise InvalidDataError(f"The table in {where} is empty: it has columns but no rows.")
    return frame


def _read_path(text: str) -> pd.DataFrame:
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text))
        if not files:
            raise InvalidDataError(f"No file matches {text!r}.")
        return pd.concat([_read_path(f) for f in files], ignore_index=True)
    path = Path(text).expanduser()
    if not path.exists():
        raise InvalidDataError(f"The data file {text!r} does not exist.")
    if path.is_dir():
        if not any(path.glob("*.parquet")) and not any(path.glob("**/*.parquet")):
            raise InvalidDataError(f"The folder {text!r} holds no .parquet files.")
        return _parquet(path, text)
    suffix = _suffix(path)
    if suffix not in SUPPORTED:
        raise InvalidDataError(
            f"Cannot read {text!r}: unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED)}."
        )
    if suffix in (".parquet", ".pq"):
        return _parquet(path, text)
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InvalidDataError(f"The CSV file {text!r} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidDataError(f"Cannot read the CSV file {text!r}: {first}") from None


def _parquet(path: Path, text: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidDataError(f"Cannot read the Parquet data {text!r}: {first}") from None


def read_metadata(source: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
    """Column-kind overrides from a dict or a JSON file.

    Two shapes are accepted: ``{"columns": {"age": {"kind": "integer"}}}`` and the
    saved-schema shape ``{"columns": [{"name": "age", "kind": "integer", ...}]}``.
    Returns ``{column: kind}``.
    """
    if source is None:
        return {}
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidSchemaError(f"The metadata file {str(source)!r} does not exist.")
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidSchemaError(f"The metadata file {str(source)!r} is not valid JSON: {exc}") from None
    else:
        doc = source
    if not isinstance(doc, Mapping) or "columns" not in doc:
        raise InvalidSchemaError("Metadata must be an object with a 'columns' entry.")
    cols = doc["columns"]
    out: dict[str, Any] = {}
    if isinstance(cols, Mapping):
        for name, spec in cols.items():
            kind = spec.get("kind", spec.get("sdtype")) if isinstance(spec, Mapping) else spec
            out[str(name)] = kind
    elif isinstance(cols, list):
        for spec in cols:
            if not isinstance(spec, Mapping) or "name" not in spec or "kind" not in spec:
                raise InvalidSchemaError(f"Each metadata column needs 'name' and 'kind'; got {spec!r}.")
            out[str(spec["name"])] = spec["kind"]
    else:
        raise InvalidSchemaError("Metadata 'columns' must be a mapping or a list.")
    return out
