"""The evaluation deployment: the engine's report of a synthetic table against the real one.

Tables arrive by reference (a path inside the server's data root, resolved
here so that nothing outside it is read) or as uploaded bytes (CSV, gzipped
CSV or Parquet, written to a private temporary file and read exactly as the
library reads a path).
"""
from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve

from engine.errors import SynthError
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


@serve.deployment(name="Evaluator")
class Evaluator:
    """Runs ``engine.evaluation.evaluate_tables`` off the event loop, one report per request."""

    def __init__(self, *, data_root: str | None):
        self.data_root = data_root

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
