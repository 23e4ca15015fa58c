"""Response encoders that write a table chunk by chunk.

Each encoder turns a sequence of Arrow tables (the chunks of one response)
into one well-formed document: a JSON array of row objects, a CSV file with
one header, or a Parquet file with one row group per chunk. Only the current
chunk is ever held, so a response of any size streams in bounded memory.
"""
from __future__ import annotations

import io
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

Format = Literal["json", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


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
        table = table.replace_schema_metadata(None)
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


def make_encoder(fmt: str) -> ChunkEncoder:
    """The encoder for ``fmt`` (already validated by the request model)."""
    encoders: dict[str, type[ChunkEncoder]] = {"json": JsonEncoder, "csv": CsvEncoder, "parquet": ParquetEncoder}
    return encoders[fmt]()
