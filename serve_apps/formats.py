"""Response encoders that write a table chunk by chunk.

Each encoder turns a sequence of Arrow tables (the chunks of one response)
into one well-formed document: a JSON array of row objects, a CSV file with
one header, or a Parquet file with one row group per chunk. Only the current
chunk is ever held, so a response of any size streams in bounded memory.
"""
from __future__ import annotations

import io
import json
import re
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

Format = Literal["json", "csv", "parquet", "png", "zip"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "png": "image/png",
    "zip": "application/zip",
}
TABLE_FORMATS = ("json", "csv", "parquet")
IMAGE_FORMATS = ("parquet", "png", "zip")


def table_to_ipc(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes: how a chunk travels from the generation replica to the ingress."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob)).read_all()


class ChunkEncoder:
    """Base class: ``begin()``, then ``encode(chunk)`` per chunk, then ``end()``; each returns bytes to send."""

    media_type: str = ""

    def begin(self) -> bytes:
        return b""

    def encode(self, table: pa.Table) -> bytes:
        raise NotImplementedError

    def end(self) -> bytes:
        return b""


class JsonEncoder(ChunkEncoder):
    """A JSON array of ``{column: value}`` objects (ISO dates, ``null`` for missing)."""

    media_type = MEDIA_TYPES["json"]

    def __init__(self) -> None:
        self._first = True

    def begin(self) -> bytes:
        return b"["

    def encode(self, table: pa.Table) -> bytes:
        if table.num_rows == 0:
            return b""
        text = table.to_pandas().to_json(orient="records", date_format="iso", date_unit="s")
        body = text[1:-1].encode()  # strip the chunk's own brackets: the chunks join into one array
        sep = b"" if self._first else b","
        self._first = False
        return sep + body

    def end(self) -> bytes:
        return b"]"


class CsvEncoder(ChunkEncoder):
    """CSV with a header line before the first chunk only."""

    media_type = MEDIA_TYPES["csv"]

    def __init__(self) -> None:
        self._header = True

    def encode(self, table: pa.Table) -> bytes:
        out = io.BytesIO()
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=self._header))
        self._header = False
        return out.getvalue()


class _Drain(io.RawIOBase):
    """A write-only file whose content is taken out after each write, so it never grows."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        data = bytes(b)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class ParquetEncoder(ChunkEncoder):
    """One Parquet file, one row group per chunk; the footer is written by ``end``."""

    media_type = MEDIA_TYPES["parquet"]

    def __init__(self) -> None:
        self._sink = _Drain()
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def encode(self, table: pa.Table) -> bytes:
        # pandas' metadata describes one chunk's index, not the file; Hugging Face's describes the columns.
        keep = {k: v for k, v in (table.schema.metadata or {}).items() if k == b"huggingface"}
        table = table.replace_schema_metadata(keep or None)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._sink, self._schema, compression="snappy")
        elif table.schema != self._schema:
            # A chunk may infer a narrower type (e.g. all-null); the file keeps the first chunk's.
            table = table.cast(self._schema)
        self._writer.write_table(table)
        return self._sink.take()

    def end(self) -> bytes:
        if self._writer is None:
            return b""
        self._writer.close()
        return self._sink.take()


def _png_blobs(table: pa.Table) -> list[bytes]:
    """The PNG bytes of an image table's ``image`` column of ``{bytes, path}`` structs."""
    column = table.column("image")
    return [b for chunk in column.chunks for b in chunk.field("bytes").to_pylist()]


class PngEncoder(ChunkEncoder):
    """The one image of a one-image response, as a PNG file."""

    media_type = MEDIA_TYPES["png"]

    def encode(self, table: pa.Table) -> bytes:
        return b"".join(_png_blobs(table))


def class_names(schema: pa.Schema) -> list[str] | None:
    """The class names an image chunk carries in its Hugging Face ``ClassLabel`` metadata, if any."""
    try:
        feature = json.loads((schema.metadata or {})[b"huggingface"])["info"]["features"]["label"]
        return [str(n) for n in feature["names"]] if feature.get("_type") == "ClassLabel" else None
    except (KeyError, TypeError, ValueError):
        return None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _entry_label(label: int, names: list[str] | None) -> str:
    """A class name fit for a file name (no separators, no leading dot); the index when there is no name."""
    if names is None or not 0 <= label < len(names):
        return str(label)
    return _UNSAFE.sub("-", names[label]).lstrip(".") or str(label)


class ZipEncoder(ChunkEncoder):
    """A zip archive of PNG files (``000000_<class name>.png``, ...), written entry by entry as chunks arrive.

    The class name comes from the model's classes; the label index stands in
    when the model has none.
    """

    media_type = MEDIA_TYPES["zip"]

    def __init__(self) -> None:
        import zipfile

        self._sink = _Drain()
        # PNG is already compressed: stored entries cost no CPU.
        self._zip = zipfile.ZipFile(self._sink, mode="w", compression=zipfile.ZIP_STORED)
        self._count = 0

    def encode(self, table: pa.Table) -> bytes:
        labels = table.column("label").to_pylist() if "label" in table.column_names else [None] * table.num_rows
        names = class_names(table.schema)
        for blob, label in zip(_png_blobs(table), labels):
            suffix = "" if label is None else f"_{_entry_label(label, names)}"
            self._zip.writestr(f"{self._count:06d}{suffix}.png", blob)
            self._count += 1
        return self._sink.take()

    def end(self) -> bytes:
        self._zip.close()
        return self._sink.take()


def make_encoder(fmt: str) -> ChunkEncoder:
    """The encoder for ``fmt`` (already validated by the request model)."""
    encoders: dict[str, type[ChunkEncoder]] = {
        "json": JsonEncoder, "csv": CsvEncoder, "parquet": ParquetEncoder, "png": PngEncoder, "zip": ZipEncoder,
    }
    return encoders[fmt]()
