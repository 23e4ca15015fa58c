"""Response encoders, keyed by format name, that write the samples of any modality chunk by chunk.

Each encoder turns a sequence of Arrow tables (the chunks of one response,
as ``Synthesizer.sample_table`` makes them) into one well-formed document: a
JSON array of row objects, JSON lines, a CSV file with one header, a Parquet file with one
row group per chunk, a zip archive of media files, or the one media file of a
one-sample answer. Only the current chunk is ever held, so a response of any
size streams in bounded memory.

No encoder knows a modality. ``zip`` and ``png`` write the table's media
column: the first column of encoded bytes, plain ``binary`` or Hugging Face's
``{bytes, path}`` struct (``Image``, ``Audio``). Which formats a model answers
in is its modality's business (``Modality.formats``); whether a chunk fits a
format is :meth:`ChunkEncoder.check`'s.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import PurePosixPath
from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

Format = Literal["json", "jsonl", "csv", "parquet", "zip", "png", "wav"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "jsonl": "application/jsonl",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "png": "image/png",
    "wav": "audio/wav",
    "zip": "application/zip",
}


class FormatMismatch(ValueError):
    """The samples cannot be written in the format asked for (no media column, bytes that are not PNG, ...)."""


def table_to_ipc(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes: how a chunk travels from the generation replica to the ingress."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob)).read_all()


def _holds_binary(dtype: pa.DataType) -> bool:
    """Whether values of ``dtype`` are, or contain, raw bytes (which JSON and CSV cannot carry)."""
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_fixed_size_binary(dtype):
        return True
    return any(_holds_binary(dtype.field(i).type) for i in range(dtype.num_fields))


def _is_bytes(dtype: pa.DataType) -> bool:
    return pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype)


def media_column(schema: pa.Schema) -> str:
    """The column of encoded media: the first ``binary`` column or ``{bytes: binary, ...}`` struct column.

    Raises FormatMismatch naming the columns there are when there is none.
    """
    for field in schema:
        if _is_bytes(field.type):
            return field.name
        if pa.types.is_struct(field.type) and field.type.get_field_index("bytes") >= 0:
            if _is_bytes(field.type.field("bytes").type):
                return field.name
    raise FormatMismatch(
        f"the samples have no column of encoded media (binary, or a {{bytes, path}} struct); their columns are "
        f"{', '.join(f'{f.name} ({f.type})' for f in schema)}"
    )


def _media(table: pa.Table) -> tuple[list[bytes | None], list[str | None]]:
    """Each sample's media bytes and, when the column carries one (Hugging Face's ``path``), its file name."""
    column = table.column(media_column(table.schema))
    if not pa.types.is_struct(column.type):
        return column.to_pylist(), [None] * table.num_rows
    blobs = [b for chunk in column.chunks for b in chunk.field("bytes").to_pylist()]
    has_path = column.type.get_field_index("path") >= 0
    paths = [p for chunk in column.chunks for p in chunk.field("path").to_pylist()] if has_path else [None] * len(blobs)
    return blobs, paths


# Leading bytes -> file extension, for media whose column carries no file name.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"GIF8", 0, "gif"),
    (b"WEBP", 8, "webp"),
    (b"WAVE", 8, "wav"),
    (b"fLaC", 0, "flac"),
    (b"OggS", 0, "ogg"),
    (b"ID3", 0, "mp3"),
    (b"%PDF", 0, "pdf"),
    (b"\x1aE\xdf\xa3", 0, "webm"),
    (b"ftyp", 4, "mp4"),
)
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


def media_extension(blob: bytes, path: str | None = None) -> str:
    """The file extension of one media sample: its file name's when it has one, else read from its leading bytes."""
    if path:
        suffix = PurePosixPath(path).suffix
        if _SAFE_SUFFIX.fullmatch(suffix):
            return suffix[1:].lower()
    for magic, offset, extension in _MAGIC:
        if blob[offset:offset + len(magic)] == magic:
            return extension
    return "bin"


class ChunkEncoder:
    """Base class: ``begin()``, then ``encode(chunk)`` per chunk, then ``end()``; each returns bytes to send.

    ``check(chunk)`` says, before anything is sent, whether the samples fit the
    format; ``one_sample`` formats hold exactly one sample (a single file).
    """

    format: ClassVar[str] = ""
    media_type: ClassVar[str] = ""
    one_sample: ClassVar[bool] = False

    def check(self, table: pa.Table) -> None:
        """Raise FormatMismatch if ``table`` (the first chunk) cannot be written in this format."""

    def begin(self) -> bytes:
        return b""

    def encode(self, table: pa.Table) -> bytes:
        raise NotImplementedError

    def end(self) -> bytes:
        return b""


class _TextEncoder(ChunkEncoder):
    """A text format: every value must be printable, so no column of raw bytes."""

    def check(self, table: pa.Table) -> None:
        binary = [f.name for f in table.schema if _holds_binary(f.type)]
        if binary:
            raise FormatMismatch(f"format {self.format!r} cannot carry the binary column(s) {', '.join(map(repr, binary))}")


def _records_json(table: pa.Table, *, lines: bool) -> str:
    """The rows of ``table`` as JSON objects (ISO dates, ``null`` for missing): an array, or one object per line."""
    return table.to_pandas().to_json(orient="records", lines=lines, date_format="iso", date_unit="s")


class JsonEncoder(_TextEncoder):
    """A JSON array of ``{column: value}`` objects (ISO dates, ``null`` for missing)."""

    format = "json"
    media_type = MEDIA_TYPES["json"]

    def __init__(self) -> None:
        self._first = True

    def begin(self) -> bytes:
        return b"["

    def encode(self, table: pa.Table) -> bytes:
        if table.num_rows == 0:
            return b""
        text = _records_json(table, lines=False)
        body = text[1:-1].encode()  # strip the chunk's own brackets: the chunks join into one array
        sep = b"" if self._first else b","
        self._first = False
        return sep + body

    def end(self) -> bytes:
        return b"]"


class JsonLinesEncoder(_TextEncoder):
    """One JSON object per line (JSON lines): a client can act on each row as it arrives."""

    format = "jsonl"
    media_type = MEDIA_TYPES["jsonl"]

    def encode(self, table: pa.Table) -> bytes:
        if table.num_rows == 0:
            return b""
        return _records_json(table, lines=True).rstrip("\n").encode() + b"\n"


class CsvEncoder(_TextEncoder):
    """CSV with a header line before the first chunk only."""

    format = "csv"
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

    format = "parquet"
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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PngEncoder(ChunkEncoder):
    """The one sample of a one-sample response, as a PNG file: the media column's bytes, which must be PNG."""

    format = "png"
    media_type = MEDIA_TYPES["png"]
    one_sample = True
    extension = "png"  # what media_extension must read in the bytes

    def check(self, table: pa.Table) -> None:
        blobs, paths = _media(table)
        for blob, path in zip(blobs, paths):
            if blob is None or media_extension(blob) != self.extension:
                found = "no bytes" if blob is None else f"{media_extension(blob, path)!r} media"
                raise FormatMismatch(f"format {self.format!r} needs {self.extension.upper()} bytes; the samples hold {found}")

    def encode(self, table: pa.Table) -> bytes:
        return b"".join(b or b"" for b in _media(table)[0])


class WavEncoder(PngEncoder):
    """The one sample of a one-sample response, as a WAV file: the media column's bytes, which must be WAV."""

    format = "wav"
    media_type = MEDIA_TYPES["wav"]
    extension = "wav"


def class_labels(schema: pa.Schema) -> tuple[str, list[str] | None] | None:
    """The column that labels each sample, and the class names its integers index, if any.

    A Hugging Face ``ClassLabel`` column (names from the schema metadata) comes
    first; else a column called ``label`` (its values are the names).
    """
    try:
        features = json.loads((schema.metadata or {})[b"huggingface"])["info"]["features"]
        for name, feature in features.items():
            if feature.get("_type") == "ClassLabel" and name in schema.names:
                return name, [str(n) for n in feature["names"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return ("label", None) if "label" in schema.names else None


def class_names(schema: pa.Schema) -> list[str] | None:
    """The class names a chunk carries in its Hugging Face ``ClassLabel`` metadata, if any."""
    found = class_labels(schema)
    return found[1] if found else None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _entry_label(label: object, names: list[str] | None) -> str:
    """A class name fit for a file name (no separators, no leading dot); the label itself when there is no name."""
    if isinstance(label, int) and names is not None and 0 <= label < len(names):
        text = names[label]
    else:
        text = str(label)
    return _UNSAFE.sub("-", text).lstrip(".") or (str(label) if isinstance(label, int) else "x")


ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ZipEncoder(ChunkEncoder):
    """A zip archive of media files (``000000_<class name>.png``, ...), written entry by entry as chunks arrive.

    Entries are the media column's bytes; the extension is the file name's the
    column carries, or else read from the bytes. The class name comes from the
    label column's classes; the label itself stands in when there are none.
    """

    format = "zip"
    media_type = MEDIA_TYPES["zip"]

    def __init__(self) -> None:
        self._sink = _Drain()
        # Media formats are already compressed: stored entries cost no CPU.
        self._zip = zipfile.ZipFile(self._sink, mode="w", compression=zipfile.ZIP_STORED)
        self._count = 0

    def check(self, table: pa.Table) -> None:
        media_column(table.schema)

    def encode(self, table: pa.Table) -> bytes:
        found = class_labels(table.schema)
        labels = table.column(found[0]).to_pylist() if found else [None] * table.num_rows
        names = found[1] if found else None
        for blob, path, label in zip(*_media(table), labels):
            blob = blob or b""
            suffix = "" if label is None else f"_{_entry_label(label, names)}"
            # A fixed entry time (zip's earliest): the same request gives the same bytes, whatever the clock says.
            entry = zipfile.ZipInfo(f"{self._count:06d}{suffix}.{media_extension(blob, path)}", date_time=ZIP_EPOCH)
            entry.external_attr = 0o644 << 16  # rw-r--r-- once unpacked
            self._zip.writestr(entry, blob, compress_type=zipfile.ZIP_STORED)
            self._count += 1
        return self._sink.take()

    def end(self) -> bytes:
        self._zip.close()
        return self._sink.take()


ENCODERS: dict[str, type[ChunkEncoder]] = {
    cls.format: cls for cls in (JsonEncoder, JsonLinesEncoder, CsvEncoder, ParquetEncoder, ZipEncoder, PngEncoder, WavEncoder)
}


def make_encoder(fmt: str) -> ChunkEncoder:
    """A fresh encoder for the format ``fmt`` (one of ``ENCODERS``)."""
    return ENCODERS[fmt]()
