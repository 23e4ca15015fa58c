"""Large training inputs: read with Ray Data, fit on a bounded sample, encode with ``map_batches``.

A Parquet folder, a CSV glob or a cloud URI is never collected on the driver:
the schema is inferred and the encoder fitted on a random sample of at most
about ``max_rows`` rows, and the whole table is encoded block by block by Ray
Data tasks. The encoded rows are materialised in Ray's object store (which
spills to disk when they do not fit in memory) before training starts, so the
training workers' shards need no CPU of their own to be produced.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from engine.core.errors import InvalidDataError
from engine.training.loop import ENCODED_COLUMN

GLOB_CHARS = "*?["
CSV_SUFFIXES = (".csv", ".csv.gz")


def is_large_source(data: Any) -> bool:
    """A folder, a glob or a URI: read with Ray Data rather than pandas."""
    if not isinstance(data, (str, os.PathLike)):
        return False
    text = str(data)
    return "://" in text or any(ch in text for ch in GLOB_CHARS) or os.path.isdir(text)


def _expand(text: str) -> list[str]:
    """The files a glob names, local or on a pyarrow filesystem (the pattern applies to file names)."""
    if "://" not in text:
        return sorted(glob.glob(os.path.expanduser(text)))
    from pyarrow import fs as pafs

    scheme, rest = text.split("://", 1)
    filesystem, parent = pafs.FileSystem.from_uri(f"{scheme}://{posixpath.dirname(rest)}")
    name_pattern = posixpath.basename(rest)
    infos = filesystem.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
    return sorted(
        f"{scheme}://{info.path}" for info in infos
        if info.type == pafs.FileType.File and fnmatch.fnmatch(info.base_name, name_pattern)
    )


def _is_csv(path: str) -> bool:
    return path.lower().endswith(CSV_SUFFIXES)


def read_dataset(source: str | os.PathLike[str]):
    """A Ray Dataset over a Parquet folder/file/URI or a CSV file/glob/URI (a glob may also name Parquet files)."""
    import ray.data
    from ray.exceptions import RayError

    text = str(source)
    paths: str | list[str] = text
    if any(ch in text for ch in GLOB_CHARS):
        paths = _expand(text)
        if not paths:
            raise InvalidDataError(f"No file matches the training data pattern {text!r}.")
        kinds = {_is_csv(p) for p in paths}
        if len(kinds) > 1:
            raise InvalidDataError(f"The pattern {text!r} matches both CSV and other files; expected files of one format.")
        is_csv = kinds.pop()
    elif "://" not in text and os.path.isdir(text):
        is_csv = not glob.glob(os.path.join(text, "**", "*.parquet"), recursive=True) and bool(
            glob.glob(os.path.join(text, "**", "*.csv*"), recursive=True)
        )
    else:
        is_csv = _is_csv(text)
    try:
        return ray.data.read_csv(paths) if is_csv else ray.data.read_parquet(paths)
    except (RayError, pa.ArrowException, OSError, ValueError) as exc:
        kind = "CSV" if is_csv else "Parquet"
        raise InvalidDataError(f"Cannot read the training data {text!r} as {kind}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """The cause of a (possibly Ray-wrapped) error, without the remote traceback or retry advice."""
    cause = getattr(exc, "cause", None)  # a RayTaskError carries the worker's exception here
    lines = [line.strip() for line in str(cause if isinstance(cause, BaseException) else exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """NumPy-backed columns (object strings), as pandas' own CSV/Parquet readers give.

    Ray Data hands out pyarrow-backed pandas dtypes (``string[pyarrow]``,
    ``int64[pyarrow]``); schema inference and the encoder expect what
    ``read_table`` produces for the same file.
    """
    return pa.Table.from_pandas(frame, preserve_index=False).to_pandas()


def sample_rows(dataset, *, max_rows: int, seed: int) -> pd.DataFrame:
    """A random sample of about ``max_rows`` rows (all rows when fewer), the only part collected on the driver."""
    from ray.exceptions import RayError

    try:
        total = dataset.count()
        if total == 0:
            raise InvalidDataError("The training data is empty: it has no rows.")
        if total > max_rows:
            # random_sample keeps each row with this probability: about max_rows rows, give or take a few sqrt(max_rows).
            dataset = dataset.random_sample(max_rows / total, seed=seed)
        return _plain(dataset.to_pandas())
    except InvalidDataError:
        raise
    except (RayError, pa.ArrowException, OSError, ValueError) as exc:  # reading is lazy: a bad file surfaces here
        raise InvalidDataError(f"Cannot read the training data: {_first_line(exc)}") from None


def encode_dataset(dataset, encoder) -> Any:
    """Encode every block with the fitted encoder (Ray Data tasks) and materialise the result.

    Returns a Dataset whose column ``ENCODED_COLUMN`` holds one float32 row
    vector per input row: what ``train_torch_model(data=...)`` reads.
    """

    def encode(batch: pa.Table) -> dict[str, Any]:
        frame = batch.to_pandas()
        # The mode draws of mode-specific normalisation are random: seed each batch from its content so
        # that batches do not all reuse the first draws of one stream, and a re-run encodes the same way.
        content = int(pd.util.hash_pandas_object(frame, index=False).to_numpy().sum(dtype=np.uint64))
        seed = int(np.random.SeedSequence([encoder.seed, content]).generate_state(1)[0])
        return {ENCODED_COLUMN: encoder.transform(frame, seed=seed)}

    return dataset.map_batches(encode, batch_format="pyarrow", batch_size=8192).materialize()
