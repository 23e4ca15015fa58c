"""Text corpora in: a DataFrame, CSV, Parquet, JSON lines, a folder of ``.txt`` files, a Hugging Face or Ray dataset.

Inside the engine a corpus is a :class:`TextCorpus`: a list of strings, the name
of the column they came from, and zero or more label columns (each a list of
strings, one per text). Everything read is validated here once, with errors that
name the file or column and what was expected.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.core.errors import InvalidDataError

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".json": "json"}
TEXT_SUFFIXES = (".txt",)
DEFAULT_TEXT_COLUMN = "text"


@dataclass
class TextCorpus:
    """Texts and their label columns (every label column holds one string per text)."""

    texts: list[str]
    text_column: str = DEFAULT_TEXT_COLUMN
    labels: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_columns(self) -> list[str]:
        return list(self.labels)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({self.text_column: self.texts, **self.labels})


def label_columns_of(label_column: str | Sequence[str] | None) -> list[str]:
    """``label_column`` as a list of column names (None: none)."""
    if label_column is None:
        return []
    if isinstance(label_column, str):
        return [label_column]
    if isinstance(label_column, Sequence) and all(isinstance(c, str) for c in label_column):
        return list(label_column)
    raise InvalidDataError(f"'label_column' must be a column name, a list of column names or None. Got {label_column!r} instead.")


def _read_file(path: Path) -> pd.DataFrame:
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith((".csv.gz", ".jsonl.gz")) else path.suffix.lower()
    kind = TABLE_SUFFIXES.get(suffix.removesuffix(".gz")) if suffix.endswith(".gz") else TABLE_SUFFIXES.get(suffix)
    try:
        if kind == "csv":
            return pd.read_csv(path, keep_default_na=False, dtype=str)
        if kind == "tsv":
            return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "json":
            return pd.read_json(path, lines=path.name.endswith((".jsonl", ".jsonl.gz")), dtype=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidDataError(f"Cannot read the text file {str(path)!r} as {kind}: {exc}") from None
    if suffix in TEXT_SUFFIXES:
        # One text file: one text per non-empty line.
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        return pd.DataFrame({DEFAULT_TEXT_COLUMN: [line for line in lines if line]})
    raise InvalidDataError(
        f"Cannot read {str(path)!r}: text corpora are read from {', '.join(sorted(TABLE_SUFFIXES))}, a .txt file "
        "(one text per line) or a folder of .txt files (one text per file; sub-folders name the label)."
    )


def _read_folder(path: Path) -> pd.DataFrame:
    """One text per ``.txt`` file; files in sub-folders take the sub-folder's name as their ``label``."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise InvalidDataError(f"The folder {str(path)!r} holds no .txt files.")
    rows = []
    for f in files:
        rel = f.relative_to(path)
        row = {DEFAULT_TEXT_COLUMN: f.read_text(encoding="utf-8", errors="replace").strip()}
        if len(rel.parts) > 1:
            row["label"] = rel.parts[0]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "label" in frame and frame["label"].isna().any():
        raise InvalidDataError(
            f"The folder {str(path)!r} mixes .txt files at its top level with files in label sub-folders; "
            "put every file in a sub-folder (one per label) or none."
        )
    return frame


def read_frame(data: Any) -> pd.DataFrame:
    """Any accepted source as a DataFrame (not yet validated)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        if not path.exists():
            raise InvalidDataError(f"The text corpus {str(path)!r} does not exist.")
        return _read_folder(path) if path.is_dir() else _read_file(path)
    if isinstance(data, Mapping):
        try:
            return pd.DataFrame(dict(data))
        except ValueError as exc:
            raise InvalidDataError(f"The columns of the text corpus must have one length: {exc}") from None
    if hasattr(data, "to_pandas"):  # a Hugging Face dataset, a Ray Dataset, an Arrow table
        return data.to_pandas()
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return pd.DataFrame({DEFAULT_TEXT_COLUMN: list(data)})
    raise InvalidDataError(
        f"A text corpus is a DataFrame, a path (CSV, Parquet, JSON lines, .txt, or a folder of .txt files), "
        f"a dict of columns, a list of strings, or a Hugging Face / Ray dataset. Got a {type(data).__name__}."
    )


def read_corpus(
    data: Any, *, text_column: str = DEFAULT_TEXT_COLUMN, label_column: str | Sequence[str] | None = None,
    min_label_count: int = 1,
) -> TextCorpus:
    """Read and validate a corpus: every text a non-empty string, every label present.

    ``min_label_count`` refuses a label value with fewer examples (a class the model could
    not learn, nor a classifier be scored on).
    """
    frame = read_frame(data)
    where = f" of {str(data)!r}" if isinstance(data, (str, os.PathLike)) else ""
    if text_column not in frame.columns:
        raise InvalidDataError(
            f"The text column {text_column!r} is not in the corpus{where}; its columns are "
            f"{', '.join(map(repr, map(str, frame.columns)))}. Pass text_column=..."
        )
    columns = label_columns_of(label_column)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidDataError(
            f"The label column {missing[0]!r} is not in the corpus{where}; its columns are "
            f"{', '.join(map(repr, map(str, frame.columns)))}."
        )
    if text_column in columns:
        raise InvalidDataError(f"The column {text_column!r} cannot be both the text column and a label column.")
    if len(frame) == 0:
        raise InvalidDataError(f"The text corpus{where} is empty.")
    texts = frame[text_column]
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise InvalidDataError(
            f"The text column {text_column!r} must hold non-empty strings; {len(bad)} of {len(frame)} rows do not "
            f"(first at row {bad[0]}: {texts.iloc[bad[0]]!r}). Drop or fill them before fitting."
        )
    labels: dict[str, list[str]] = {}
    for c in columns:
        values = frame[c]
        if values.isna().any():
            raise InvalidDataError(f"The label column {c!r} has {int(values.isna().sum())} missing values; every text needs a label.")
        strings = [str(v) for v in values]
        counts = pd.Series(strings).value_counts()
        rare = counts[counts < min_label_count]
        if len(rare):
            raise InvalidDataError(
                f"The label {rare.index[0]!r} of column {c!r} has {int(rare.iloc[0])} example(s); each label needs at least "
                f"{min_label_count} to be learned. Merge or drop the rare labels."
            )
        labels[c] = strings
    return TextCorpus(texts=[str(t) for t in texts], text_column=text_column, labels=labels)
