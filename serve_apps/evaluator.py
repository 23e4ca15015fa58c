"""The evaluation deployment: the engine's report of a synthetic table against the real one.

Tables arrive by reference (a path inside the server's data root, resolved
here so that nothing outside it is read) or as uploaded bytes (CSV, gzipped
CSV or Parquet, written to a private temporary file and read exactly as the
library reads a path).
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from ray import serve

from engine.core.errors import SynthError
from serve_apps.config import register_modalities
from serve_apps.errors import Failure, RequestRejected
from serve_apps.store import resolve_data_path

logger = logging.getLogger("ray.serve")
TABLE_FIELDS = ("real", "synthetic", "holdout")


@dataclass(frozen=True)
class TableInput:
    """One table of an evaluation request: ``reference`` (a data-root path) or ``data`` (uploaded bytes)."""

    field: str
    reference: str | None = None
    data: bytes | None = None
    filename: str | None = None


def _upload_suffix(data: bytes) -> str:
    if data[:4] == b"PAR1":
        return ".parquet"
    if data[:2] == b"\x1f\x8b":
        return ".csv.gz"
    return ".csv"


BLOCK = 1 << 20


def _csv_extent(path: Path, max_rows: int, max_bytes: int) -> tuple[int, int]:
    """(decoded bytes, rows) of a plain or gzipped CSV, counted block by block and stopping past either limit.

    Rows are counted as lines after the header, so a quoted field holding line
    breaks counts more than once: the count never falls short.
    """
    with path.open("rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    size = lines = 0
    last = b"\n"
    with (gzip.open(path, "rb") if compressed else path.open("rb")) as f:
        while block := f.read(BLOCK):
            size += len(block)
            lines += block.count(b"\n")
            last = block[-1:]
            if size > max_bytes or lines - 1 > max_rows:
                break
    return size, max(lines - (1 if last == b"\n" else 0), 0)


def _parquet_extent(path: Path) -> tuple[int, int]:
    """(uncompressed bytes, rows) of a Parquet file or folder, from the footers alone."""
    files = sorted(path.glob("**/*.parquet")) if path.is_dir() else [path]
    size = rows = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        rows += meta.num_rows
        size += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return size, rows


def check_table_extent(path: str, field: str, shown: str, *, max_rows: int, max_bytes: int) -> None:
    """413 if the table at ``path`` decodes to more than ``max_bytes`` or holds more than ``max_rows`` rows.

    Checked before pandas reads it, because pandas expands a file whole: a
    small gzip or Parquet upload can decode to gigabytes. A file that cannot
    even be measured is left to the reader, whose error names it.
    """
    p = Path(path)
    try:
        if not p.is_dir():
            with p.open("rb") as f:
                magic = f.read(4)
        if p.is_dir() or magic == b"PAR1":
            size, rows = _parquet_extent(p)
            what = "uncompressed Parquet data"
        else:
            size, rows = _csv_extent(p, max_rows, max_bytes)
            what = "CSV text (after gunzip)"
    except (OSError, EOFError, zlib.error, pa.ArrowException, ValueError):
        return
    if size > max_bytes:
        raise RequestRejected(
            413,
            f"{field!r} ({shown}) holds more than {max_bytes:,} bytes of {what}, the most this server "
            f"evaluates per table (max_eval_bytes). Evaluate a sample of the table, or run engine.evaluation in a job.",
        )
    if rows > max_rows:
        raise RequestRejected(
            413,
            f"{field!r} ({shown}) has more than {max_rows:,} rows, the most this server evaluates per table "
            f"(max_eval_rows). Evaluate a sample of the table, or run engine.evaluation in a job.",
        )


@serve.deployment(name="Evaluator")
class Evaluator:
    """Runs ``engine.evaluation.evaluate_tables`` off the event loop, one report per request."""

    def __init__(self, *, data_root: str | None, max_rows: int, max_bytes: int, modalities: Sequence[str] = ()):
        # Every deployment knows the application's plugin modalities, so that evaluation can follow the models.
        register_modalities(modalities)
        self.data_root = data_root
        self.max_rows = max_rows
        self.max_bytes = max_bytes

    def _report(self, tables: dict[str, TableInput], target: str | None, privacy: bool, detection: bool, html: bool):
        from engine.evaluation import evaluate_tables

        with tempfile.TemporaryDirectory(prefix="synth-eval-") as tmp:
            paths: dict[str, str] = {}
            for name, t in tables.items():
                if t.reference is not None:
                    paths[name] = resolve_data_path(self.data_root, t.reference, name)
                else:
                    path = Path(tmp) / f"{name}{_upload_suffix(t.data or b'')}"
                    path.write_bytes(t.data or b"")
                    paths[name] = str(path)
                shown = f"upload {t.filename or 'unnamed'!r}" if t.data is not None else repr(t.reference)
                check_table_extent(paths[name], name, shown, max_rows=self.max_rows, max_bytes=self.max_bytes)
            try:
                report = evaluate_tables(
                    paths["real"], paths["synthetic"], holdout=paths.get("holdout"), target=target,
                    privacy=privacy, detection=detection,
                )
            except SynthError as exc:
                raise RequestRejected(422, _name_uploads(str(exc), tables, paths)) from None
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                # Unreadable bytes (a parser's own error): say which table it was.
                culprit = ", ".join(f"{n!r}" for n in tables)
                raise RequestRejected(
                    422, f"Could not read the tables ({culprit}) as CSV or Parquet: {type(exc).__name__}: {exc}"
                ) from None
        return {"json": report.to_json(), "html": report.to_html() if html else None, "summary": report.summary()}

    async def evaluate(
        self,
        tables: dict[str, TableInput],
        *,
        target: str | None = None,
        privacy: bool = True,
        detection: bool = True,
        html: bool = False,
    ) -> dict[str, Any] | Failure:
        """``{"json": report JSON text, "html": report page or None, "summary": text}``, or a ``Failure``."""
        try:
            return await asyncio.to_thread(self._report, tables, target, privacy, detection, html)
        except RequestRejected as exc:
            return Failure(exc.status, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a failing report must not take the replica down
            logger.exception("evaluation failed")
            return Failure(500, f"The evaluation failed: {type(exc).__name__}: {exc}")


def _name_uploads(message: str, tables: dict[str, TableInput], paths: dict[str, str]) -> str:
    """Replace the temporary paths of uploads in an engine error by the uploaded file names."""
    for name, t in tables.items():
        if t.data is not None:
            message = message.replace(paths[name], f"upload {name!r} ({t.filename or 'unnamed'})")
    return message
