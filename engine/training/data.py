"""Large training inputs: read with Ray Data, fit on a bounded sample, encode with ``map_batches``.

A Parquet folder, a CSV glob or a cloud URI is never collected on the driver:
the schema is inferred and the encoder fitted on a random sample of at most
``sample_rows`` rows, and the whole table is encoded block by block by Ray
Data tasks. The encoded rows are materialised in Ray's object store (which
spills to disk when they do not fit in memory) before training starts, so the
training workers' shards need no CPU of their own to be produced.
"""
from __future__ import annotations

import glob
import os
from typing import Any

import pandas as pd

from engine.errors import InvalidDataError
from engine.training.loop import ENCODED_COLUMN


def is_large_source(data: Any) -> bool:
    """A folder, a glob or a URI: read with Ray Data rather than pandas."""
    if not isinstance(data, (str, os.PathLike)):
        return False
    text = str(data)
    return "://" in text or any(ch in text for ch in "*?[") or os.path.isdir(text)


def read_dataset(source: str):
    """A Ray Dataset over a Parquet folder/file/URI or a CSV file/glob/URI."""
    import ray.data

    text = str(source)
    lowered = text.lower()
    try:
        if lowered.endswith((".csv", ".csv.gz")) or (any(ch in text for ch in "*?[") and ".csv" in lowered):
            paths = sorted(glob.glob(text)) if "://" not in text and any(ch in text for ch in "*?[") else text
            if not paths:
                raise InvalidDataError(f"No file matches {text!r}.")
            return ray.data.read_csv(paths)
        return ray.data.read_parquet(text)
    except InvalidDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray wraps filesystem and format errors in many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidDataError(f"Cannot read the training data {text!r}: {first}") from None


def sample_rows(dataset, *, max_rows: int, seed: int) -> pd.DataFrame:
    """A random sample of at most about ``max_rows`` rows, collected on the driver."""
    total = dataset.count()
    if total == 0:
        raise InvalidDataError("The training data is empty: it has no rows.")
    fraction = min(1.0, max_rows / total)
    sample = dataset.random_sample(fraction, seed=seed).to_pandas() if fraction < 1.0 else dataset.to_pandas()
    return sample.reset_index(drop=True)


def encode_dataset(dataset, encoder) -> Any:
    """Encode every block with the fitted encoder (Ray Data tasks) and materialise the result."""

    def encode(batch: pd.DataFrame) -> dict[str, Any]:
        return {ENCODED_COLUMN: encoder.transform(batch)}

    return dataset.map_batches(encode, batch_format="pandas", batch_size=8192).materialize()
