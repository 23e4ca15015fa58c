"""Recordings in and out: WAV/FLAC folders, CSV manifests, Parquet, arrays; WAV files and Parquet manifests written.

Inside the engine a set of recordings is an :class:`AudioSet`: float32 clips
``(N, T)`` in [-1, 1], mono, all at one sample rate and one length, with
optional integer labels and the class names they index. Everything read is
brought to that form (mixed to mono, resampled with
``scipy.signal.resample_poly``, padded with silence or cropped); everything
written is 16-bit PCM WAV.

Where labels come from (``labels_from``):

- ``"folder"`` (default for a folder): one sub-folder per class
  (``recordings/7/a.wav``); files directly in the folder are unlabelled;
- ``"filename_prefix"``: the file name up to its first ``_``
  (``7_george_3.wav`` is a ``7``, as in the Free Spoken Digit Dataset);
- ``"none"``: no labels;
- a CSV manifest (``path,label`` columns, paths relative to the CSV) or a
  Parquet/DataFrame ``label`` column carries its own.

Tables of samples (:func:`audio_table`) hold an ``audio`` column of
``{bytes, path}`` structs (WAV bytes) and a ``label`` column, with the schema
metadata Hugging Face ``datasets`` reads (``Audio``, ``ClassLabel``), so the
Serve app's zip encoder and ``datasets`` both understand them.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.core.errors import InvalidDataError

AUDIO_SUFFIXES = (".wav", ".flac")
AUDIO_COLUMN = "audio"
LABEL_COLUMN = "label"
MANIFEST_NAME = "manifest.parquet"
LABEL_RULES = ("folder", "filename_prefix", "none")
MIN_FRACTION = 0.1  # a clip shorter than this share of the duration is refused: mostly padding, not a recording


@dataclass
class AudioSet:
    """Clips ``(N, T)`` float32 in [-1, 1] at ``sample_rate``, labels ``(N,)`` int64 or None, class names."""

    clips: np.ndarray
    sample_rate: int
    labels: np.ndarray | None = None
    class_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def label_names(self) -> list[str] | None:
        """Each clip's class name (None when unlabelled)."""
        if self.labels is None:
            return None
        names = self.class_names or []
        return [names[k] if names else str(k) for k in self.labels]


# ----------------------------------------------------------------- signal
def resample(clip: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """``clip`` (``(T,)`` or ``(T, C)``) from ``source_rate`` to ``target_rate`` by polyphase filtering."""
    if source_rate == target_rate:
        return clip
    from scipy.signal import resample_poly

    g = math.gcd(int(source_rate), int(target_rate))
    return resample_poly(clip, int(target_rate) // g, int(source_rate) // g, axis=0)


def fix_length(clip: np.ndarray, num_samples: int) -> np.ndarray:
    """``clip`` cropped to its first ``num_samples`` samples, or padded with silence at the end."""
    if len(clip) >= num_samples:
        return clip[:num_samples]
    return np.pad(clip, (0, num_samples - len(clip)))


def to_mono(samples: np.ndarray, where: str, max_channels: int = 2) -> np.ndarray:
    """``(T,)`` from ``(T,)`` or ``(T, C)``: the mean of the channels (stereo is mixed down; more is refused)."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2 or samples.shape[1] > max_channels or samples.shape[1] < 1:
        channels = samples.shape[1] if samples.ndim == 2 else f"shape {samples.shape}"
        raise InvalidDataError(
            f"{where} has {channels} channels; audio models take mono or stereo recordings (stereo is mixed to mono). "
            "Mix multi-channel recordings down before training."
        )
    return samples.mean(axis=1)


def conform(samples: np.ndarray, source_rate: int, sample_rate: int, num_samples: int, where: str) -> np.ndarray:
    """One recording made a model's clip: mono, resampled, refused when too short, padded or cropped; float32."""
    x = to_mono(np.asarray(samples, dtype=np.float64), where)
    if not np.all(np.isfinite(x)):
        raise InvalidDataError(f"{where} holds NaN or infinite samples.")
    x = resample(x, source_rate, sample_rate)
    needed = int(math.ceil(MIN_FRACTION * num_samples))
    if len(x) < needed:
        raise InvalidDataError(
            f"{where} is {len(x) / sample_rate:.4f} s long at {sample_rate} Hz ({len(x)} samples); clips must last at "
            f"least {MIN_FRACTION:.0%} of the duration ({needed} of {num_samples} samples). Remove it or shorten the duration."
        )
    return np.clip(fix_length(x, num_samples), -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------- files
def read_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """The samples (float64, ``(T,)`` or ``(T, C)``) and sample rate of one WAV/FLAC file; errors name the file."""
    import soundfile as sf

    try:
        samples, rate = sf.read(os.fspath(path), dtype="float64", always_2d=False)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:  # libsndfile reports bad files as these
        raise InvalidDataError(f"Cannot read the audio file {os.fspath(path)!r}: {exc}") from None
    if samples.size == 0:
        raise InvalidDataError(f"The audio file {os.fspath(path)!r} holds no samples.")
    return samples, int(rate)


def wav_bytes(clip: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes of one mono clip in [-1, 1] (clipped there)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(clip, dtype=np.float32), -1.0, 1.0), int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue()


def decode_wav(data: bytes, *, where: str = "audio") -> tuple[np.ndarray, int]:
    """Samples (float64) and rate of WAV/FLAC bytes."""
    import soundfile as sf

    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=False)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:
        raise InvalidDataError(f"Cannot decode {where} as WAV/FLAC audio: {exc}") from None
    return samples, int(rate)


def write_wav(path: str | os.PathLike[str], clip: np.ndarray, sample_rate: int) -> Path:
    """Write one clip as a 16-bit WAV file, through a temporary name (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(wav_bytes(clip, sample_rate))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _label_of(path: Path, root: Path, labels_from: str) -> str | None:
    if labels_from == "none":
        return None
    if labels_from == "filename_prefix":
        return path.stem.split("_", 1)[0]
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else None


def _encode_labels(values: Sequence[Any], where: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes and sorted class names (numeric names in numeric order: "2" before "10")."""
    names = sorted({str(v) for v in values}, key=lambda s: (0, int(s), s) if s.lstrip("-").isdigit() else (1, 0, s))
    index = {n: i for i, n in enumerate(names)}
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        raise InvalidDataError(f"{where} has missing labels; give a label to every clip or none at all.")
    return np.array([index[str(v)] for v in values], dtype=np.int64), names


def read_audio(
    source: Any,
    labels: Any = None,
    *,
    sample_rate: int,
    num_samples: int,
    labels_from: str | None = None,
    source_rate: int | None = None,
) -> AudioSet:
    """Read recordings from any accepted source as clips of ``num_samples`` at ``sample_rate``.

    Args:
        source: a folder of WAV/FLAC files (class sub-folders give labels), one
            audio file, a CSV manifest (``path`` and optional ``label``
            columns), a Parquet file (an ``audio`` column of WAV bytes or of
            arrays, optional ``label``), a DataFrame with an ``audio`` column
            (arrays or WAV bytes), an array ``(N, T)``, or a list of file paths.
        labels: one label per clip (overrides the source's).
        labels_from: ``"folder"``, ``"filename_prefix"`` or ``"none"`` for
            files; or the name of the label column of a table.
        source_rate: the rate of arrays given without one (default: ``sample_rate``).
    """
    if labels_from is not None and not isinstance(labels_from, str):
        raise InvalidDataError(f"labels_from must be one of {', '.join(map(repr, LABEL_RULES))} or a column name; got {labels_from!r}.")
    entries: list[tuple[str, np.ndarray, int]] = []  # (where, samples, rate)
    found_labels: list[Any] | None = None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InvalidDataError(f"The audio source {str(path)!r} does not exist.")
        if path.is_dir():
            rule = labels_from or "folder"
            if rule not in LABEL_RULES:
                raise InvalidDataError(f"labels_from for a folder must be one of {', '.join(map(repr, LABEL_RULES))}; got {rule!r}.")
            files = _audio_files(path)
            if not files:
                raise InvalidDataError(f"The folder {str(path)!r} holds no {'/'.join(AUDIO_SUFFIXES)} files.")
            entries = [(repr(str(f)), *read_file(f)) for f in files]
            found = [_label_of(f, path, rule) for f in files]
            if any(v is not None for v in found):
                if any(v is None for v in found):
                    loose = next(f for f, v in zip(files, found) if v is None)
                    raise InvalidDataError(
                        f"Some files of {str(path)!r} have a class sub-folder and some do not (e.g. {str(loose)!r}); "
                        "put every file in a class sub-folder, or pass labels_from='none'."
                    )
                found_labels = found
        elif path.suffix.lower() in AUDIO_SUFFIXES:
            entries = [(repr(str(path)), *read_file(path))]
        elif path.suffix.lower() == ".csv":
            entries, found_labels = _read_csv_manifest(path, labels_from)
        elif path.suffix.lower() == ".parquet":
            import pandas as pd

            return read_audio(pd.read_parquet(path), labels, sample_rate=sample_rate, num_samples=num_samples,
                              labels_from=labels_from, source_rate=source_rate)
        else:
            raise InvalidDataError(
                f"Cannot read audio from {str(path)!r}: expected a folder, a {'/'.join(AUDIO_SUFFIXES)} file, a CSV manifest "
                "or a Parquet file."
            )
    elif _is_frame(source):
        entries, found_labels = _read_frame(source, labels_from, source_rate or sample_rate)
    elif isinstance(source, (list, tuple)) and source and all(isinstance(s, (str, os.PathLike)) for s in source):
        entries = [(repr(os.fspath(f)), *read_file(f)) for f in source]
    else:
        arr = np.asarray(source)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.dtype.kind not in "fiu" or len(arr) == 0:
            raise InvalidDataError(
                f"Audio arrays must be non-empty numbers of shape (N, T) (one clip per row); got {arr.dtype} {arr.shape}."
            )
        if arr.dtype.kind in "iu":  # integer PCM: scale by its full range
            arr = arr / float(np.iinfo(arr.dtype).max + 1)
        rate = source_rate or sample_rate
        entries = [(f"clip {i}", row, rate) for i, row in enumerate(arr)]
    clips = np.stack([conform(x, rate, sample_rate, num_samples, where) for where, x, rate in entries])
    if labels is not None:
        if isinstance(labels, (str, int)):
            labels = [labels] * len(clips)
        found_labels = list(np.asarray(labels).tolist())
        if len(found_labels) != len(clips):
            raise InvalidDataError(f"labels holds {len(found_labels)} labels for {len(clips)} clips; give one label per clip.")
    if found_labels is None:
        return AudioSet(clips, int(sample_rate))
    codes, names = _encode_labels(found_labels, "The audio source")
    return AudioSet(clips, int(sample_rate), codes, names)


def _is_frame(source: Any) -> bool:
    return hasattr(source, "columns") and hasattr(source, "iloc")


def _read_csv_manifest(path: Path, labels_from: str | None) -> tuple[list, list | None]:
    import pandas as pd

    frame = pd.read_csv(path)
    column = next((c for c in ("path", "file", "filename") if c in frame.columns), None)
    if column is None:
        raise InvalidDataError(f"The CSV manifest {str(path)!r} needs a 'path' column of audio files; its columns are {list(frame.columns)}.")
    labels = _table_labels(frame, labels_from, f"The CSV manifest {str(path)!r}")
    entries = []
    for name in frame[column].astype(str):
        f = Path(name) if Path(name).is_absolute() else path.parent / name
        entries.append((repr(str(f)), *read_file(f)))
    return entries, labels


def _table_labels(frame: Any, labels_from: str | None, where: str) -> list | None:
    """The labels of a table: its ``label`` column, or the column ``labels_from`` names; none for ``"none"``."""
    if labels_from == "none":
        return None
    if labels_from in (None, "folder", "filename_prefix", LABEL_COLUMN):
        return frame[LABEL_COLUMN].tolist() if LABEL_COLUMN in frame.columns else None
    if labels_from not in frame.columns:
        raise InvalidDataError(f"{where} has no label column {labels_from!r}; its columns are {list(frame.columns)}.")
    return frame[labels_from].tolist()


def _read_frame(frame: Any, labels_from: str | None, rate: int) -> tuple[list, list | None]:
    if AUDIO_COLUMN not in frame.columns:
        raise InvalidDataError(f"An audio table needs an {AUDIO_COLUMN!r} column (arrays or WAV bytes); its columns are {list(frame.columns)}.")
    rate = int(getattr(frame, "attrs", {}).get("sample_rate", rate))
    entries = []
    for i, value in enumerate(frame[AUDIO_COLUMN]):
        where = f"row {i} of the {AUDIO_COLUMN!r} column"
        if isinstance(value, dict):
            value = value.get("bytes") if value.get("bytes") is not None else value.get("array")
        if isinstance(value, (bytes, bytearray)):
            entries.append((where, *decode_wav(bytes(value), where=where)))
        else:
            arr = np.asarray(value)
            if arr.dtype == object or arr.dtype.kind not in "fiu" or arr.size == 0:
                raise InvalidDataError(f"{where} is not an array of samples or WAV bytes (got {type(value).__name__}).")
            entries.append((where, arr, rate))
    labels = _table_labels(frame, labels_from, "The audio table")
    return entries, labels


# ----------------------------------------------------------------- tables and folders
def audio_table(clips: np.ndarray, labels: np.ndarray | None, class_names: Sequence[str] | None, sample_rate: int) -> pa.Table:
    """Clips as an Arrow table: ``audio`` ``{bytes, path}`` structs of WAV bytes and ``label`` (int64 class indices)."""
    blobs = [wav_bytes(c, sample_rate) for c in clips]
    audio = pa.StructArray.from_arrays([pa.array(blobs, pa.binary()), pa.array([None] * len(blobs), pa.string())],
                                       names=["bytes", "path"])
    columns: dict[str, Any] = {AUDIO_COLUMN: audio}
    features: dict[str, Any] = {AUDIO_COLUMN: {"_type": "Audio", "sampling_rate": int(sample_rate)}}
    if labels is not None:
        columns[LABEL_COLUMN] = pa.array(np.asarray(labels, dtype=np.int64))
        features[LABEL_COLUMN] = {"_type": "ClassLabel", "names": list(class_names or [])}
    table = pa.table(columns)
    return table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})


def audio_set_from_table(table: pa.Table) -> AudioSet:
    """The clips, rate, labels and class names of a table :func:`audio_table` wrote."""
    if AUDIO_COLUMN not in table.column_names:
        raise InvalidDataError(f"The table has no {AUDIO_COLUMN!r} column; its columns are {table.column_names}.")
    column = table.column(AUDIO_COLUMN)
    blobs = [b for chunk in column.chunks for b in chunk.field("bytes").to_pylist()]
    decoded = [decode_wav(b, where=f"row {i} of the audio column") for i, b in enumerate(blobs)]
    rates = {r for _, r in decoded}
    if len(rates) > 1:
        raise InvalidDataError(f"The table's clips have several sample rates {sorted(rates)}; expected one.")
    clips = np.stack([to_mono(x, f"row {i}").astype(np.float32) for i, (x, _) in enumerate(decoded)]) if decoded else np.zeros((0, 0), np.float32)
    labels = names = None
    if LABEL_COLUMN in table.column_names:
        labels = np.asarray(table.column(LABEL_COLUMN).to_pylist(), dtype=np.int64)
        try:
            meta = json.loads((table.schema.metadata or {})[b"huggingface"])
            names = [str(n) for n in meta["info"]["features"][LABEL_COLUMN]["names"]]
        except (KeyError, ValueError, TypeError):
            names = None
    return AudioSet(clips, rates.pop() if rates else 0, labels, names)


def save_dataset(clips: Any, output_dir: str | os.PathLike[str], *, format: str = "folder", overwrite: bool = False) -> Path:
    """Write clips (an :class:`AudioSet` or the DataFrame ``AudioSynthesizer.sample`` returns) to ``output_dir``.

    ``"folder"``: WAV files, one sub-folder per label (``7/000000.wav``), plus
    ``manifest.parquet`` (file, label, sample rate, length); ``"parquet"``:
    ``part-00000.parquet`` as :func:`audio_table`. Written to a temporary folder
    and moved in place when complete: an interrupted call leaves nothing half-written.
    """
    audio_set = as_audio_set(clips)
    if format not in ("folder", "parquet"):
        raise InvalidDataError(f"format must be 'folder' (WAV files) or 'parquet'; got {format!r}.")
    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise InvalidDataError(f"The output folder {str(out)!r} is not empty; pass overwrite=True to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        if format == "parquet":
            pq.write_table(audio_table(audio_set.clips, audio_set.labels, audio_set.class_names, audio_set.sample_rate),
                           tmp / "part-00000.parquet")
        else:
            names = audio_set.label_names()
            width = max(6, len(str(len(audio_set))))
            files = []
            for i, clip in enumerate(audio_set.clips):
                rel = f"{i:0{width}d}.wav" if names is None else f"{_safe(names[i])}/{i:0{width}d}.wav"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(wav_bytes(clip, audio_set.sample_rate))
                files.append(rel)
            manifest = {"file": files, "sample_rate": [audio_set.sample_rate] * len(files),
                        "num_samples": [audio_set.clips.shape[1]] * len(files)}
            if names is not None:
                manifest["label"] = names
            pq.write_table(pa.table(manifest), tmp / MANIFEST_NAME)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).lstrip(".") or "x"


def as_audio_set(clips: Any, sample_rate: int | None = None) -> AudioSet:
    """An :class:`AudioSet` from an AudioSet, the DataFrame ``sample`` returns, or an Arrow table of WAV bytes."""
    if isinstance(clips, AudioSet):
        return clips
    if isinstance(clips, pa.Table):
        return audio_set_from_table(clips)
    if _is_frame(clips) and AUDIO_COLUMN in clips.columns:
        rate = int(clips.attrs.get("sample_rate", sample_rate or 0))
        if not rate:
            raise InvalidDataError("The clips' sample rate is unknown: set frame.attrs['sample_rate'] or pass sample_rate.")
        arrays = [np.asarray(a, dtype=np.float32) for a in clips[AUDIO_COLUMN]]
        if len({len(a) for a in arrays}) > 1:
            raise InvalidDataError("The clips differ in length; expected one length (as sample() returns them).")
        labels = clips[LABEL_COLUMN].astype(str).tolist() if LABEL_COLUMN in clips.columns else None
        codes, names = _encode_labels(labels, "The clips") if labels is not None else (None, None)
        return AudioSet(np.stack(arrays) if arrays else np.zeros((0, 0), np.float32), rate, codes, names)
    raise InvalidDataError(
        f"Expected an AudioSet, a DataFrame with an {AUDIO_COLUMN!r} column (as sample() returns) or an Arrow table; "
        f"got {type(clips).__name__}."
    )
