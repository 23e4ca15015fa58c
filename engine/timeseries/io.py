"""Reading time-series input: a long-format table, a wide ``(n, T, channels)`` array or one long series.

What the user gave decides the output format (see :mod:`engine.timeseries.transforms`):

- ``"panel"``: a DataFrame with an entity column, one row per (entity, time step);
- ``"windows"``: one long series (a DataFrame without entity column, or a 1-D / 2-D
  array), cut into windows of ``sequence_length`` steps every ``stride`` steps;
- ``"array"``: a 3-D array ``(n, T, channels)``; steps that are NaN in every channel at
  the end of a sequence are padding (sequences of different lengths).

Files: CSV, Parquet (tables) and ``.npy`` (arrays), local paths.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from engine.core.errors import InvalidDataError

InputKind = Literal["panel", "windows", "array"]


def read_input(data: Any) -> pd.DataFrame | np.ndarray:
    """``data`` as a DataFrame or an array; paths to CSV, Parquet or ``.npy`` files are read."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise InvalidDataError(f"The time-series file {str(path)!r} does not exist.")
        suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
        if suffix in (".csv", ".csv.gz", ".txt"):
            return pd.read_csv(path)
        if suffix == ".parquet" or path.is_dir():
            return pd.read_parquet(path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        raise InvalidDataError(f"Cannot read the time series in {str(path)!r}: expected a .csv, .parquet or .npy file.")
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else "value")
    try:
        import pyarrow as pa

        if isinstance(data, pa.Table):
            return data.to_pandas()
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    array = np.asarray(data)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise InvalidDataError(f"A time-series array must hold numbers; got dtype {array.dtype}.")
    return array


def input_kind(data: pd.DataFrame | np.ndarray, entity_column: str | None) -> InputKind:
    """Which of the three input shapes ``data`` is (see the module docs)."""
    if isinstance(data, pd.DataFrame):
        if entity_column is not None:
            if entity_column not in data.columns:
                raise InvalidDataError(
                    f"The entity column {entity_column!r} is not in the data; its columns are {list(map(str, data.columns))}."
                )
            return "panel"
        return "windows"
    if data.ndim == 3:
        if entity_column is not None:
            raise InvalidDataError("entity_column applies to a long-format table; an (n, T, channels) array has no columns.")
        return "array"
    if data.ndim in (1, 2):
        return "windows"
    raise InvalidDataError(f"A time-series array must be 1-D or 2-D (one long series) or 3-D (n, T, channels); got shape {data.shape}.")


def array_to_frame(array: np.ndarray) -> pd.DataFrame:
    """One long series given as a 1-D or 2-D array, as a table with columns ``c0``, ``c1``, ..."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    return pd.DataFrame({f"c{i}": a[:, i] for i in range(a.shape[1])})
