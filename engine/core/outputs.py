"""Writing samples to files: Parquet, CSV or JSON lines by the file's extension, never half-written."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa

from engine.core.errors import InvalidOptionError

SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv", ".json": "json", ".jsonl": "json"}


def file_format(out: str, format: str | None = None) -> str:
    """The format ``out`` is written in: ``format`` when given, else its extension's."""
    if format is not None:
        return format
    path = Path(out)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".csv.gz") else path.suffix
    try:
        return SUFFIXES[suffix]
    except KeyError:
        raise InvalidOptionError(
            f"The output file {out!r} must end in {', '.join(SUFFIXES)} (or give the format explicitly)."
        ) from None


def write_table(table: pa.Table, out: str, format: str | None = None, *, unit: str = "row") -> str:
    """Write ``table`` to the file ``out`` through a temporary file; return a line saying what was written.

    A failure leaves nothing behind, and a file that was at ``out`` before stays as it was.
    """
    fmt = file_format(out, format)
    if fmt not in ("parquet", "csv", "json"):
        raise InvalidOptionError(f"Cannot write {unit}s as {fmt!r} to a file; use parquet, csv or json.")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        else:
            frame = table.to_pandas()
            if fmt == "csv":
                frame.to_csv(tmp, index=False, compression="gzip" if out.endswith(".gz") else None)
            else:
                frame.to_json(tmp, orient="records", lines=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return f"wrote {table.num_rows} {unit}s to {out}"
