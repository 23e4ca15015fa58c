"""What the interpreter knows of a data set: its columns, their kinds and values, and their synonyms.

Built from a DataFrame, a CSV/Parquet path, a fitted front door's ``describe()``
card, or a plain mapping ``{"columns": {name: {"kind": ..., "values": [...],
"synonyms": [...], "value_synonyms": {label: [...]}}}}``. Metadata of the same
shape adds synonyms to any of these.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.core.errors import SynthError

Kind = Literal["categorical", "boolean", "numeric", "datetime", "other"]
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
# Whole-word matches first; a close spelling is taken at this similarity, and offered as "did you mean" below it.
ACCEPT, SUGGEST = 0.85, 0.6


class InterpretError(SynthError, ValueError):
    """A request (or part of it) could not be mapped to the data: the message quotes the words and lists what is known."""


def norm(text: str) -> str:
    """Words compared without case, spaces, dashes or underscores: ``"Hours per week"`` ~ ``"hours-per-week"``."""
    return re.sub(r"[\W_]+", "", str(text).lower())


def singular(word: str) -> str:
    w = word.lower()
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("shes", "sh"), ("ches", "ch"), ("xes", "x"), ("s", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 2 and not w.endswith("ss"):
            return w[: -len(suffix)] + repl
    return w


@dataclass
class ColumnInfo:
    name: str
    kind: Kind
    values: list[Any] = field(default_factory=list)  # discrete columns: the labels as stored
    synonyms: list[str] = field(default_factory=list)
    value_synonyms: dict[str, list[str]] = field(default_factory=dict)  # str(label) -> other words for it

    @property
    def numeric(self) -> bool:
        return self.kind in ("numeric", "datetime")

    def flag_values(self) -> tuple[Any, Any] | None:
        """(true label, false label) of a yes/no column (boolean, or two labels like 0/1, yes/no), else None."""
        if len(self.values) != 2:
            return None
        texts = [norm(v) for v in self.values]
        true = [v for v, t in zip(self.values, texts) if t in _TRUE]
        false = [v for v, t in zip(self.values, texts) if t in _FALSE]
        if len(true) == 1 and len(false) == 1:
            return true[0], false[0]
        return None


@dataclass
class Vocabulary:
    columns: dict[str, ColumnInfo]

    # ---------------------------------------------------------------- build
    @classmethod
    def from_any(cls, source: Any, metadata: Mapping[str, Any] | None = None) -> "Vocabulary":
        if isinstance(source, Vocabulary):
            vocab = source
        elif isinstance(source, (str, os.PathLike)):
            import pandas as pd

            path = str(source)
            if not os.path.exists(path):
                raise InterpretError(f"The data {path!r} to read column names and values from does not exist.")
            # The names and values of a bounded number of rows are enough to resolve words against.
            frame = pd.read_parquet(path) if path.endswith(".parquet") or os.path.isdir(path) else pd.read_csv(path, nrows=200_000)
            vocab = cls.from_frame(frame)
        elif hasattr(source, "describe") and hasattr(source, "sample_table"):  # a fitted front door
            vocab = cls.from_card(source.describe())
        elif isinstance(source, Mapping):
            vocab = cls.from_card(source)
        elif hasattr(source, "columns") and hasattr(source, "dtypes"):
            vocab = cls.from_frame(source)
        else:
            raise InterpretError(
                f"interpret() needs the data's schema: a DataFrame, a CSV/Parquet path, a fitted synthesizer or a mapping "
                f"with 'columns'; got {type(source).__name__}."
            )
        if metadata:
            vocab.add_metadata(metadata)
        return vocab

    @classmethod
    def from_frame(cls, frame: Any, max_values: int = 1000) -> "Vocabulary":
        import pandas as pd

        columns: dict[str, ColumnInfo] = {}
        for name in frame.columns:
            s = frame[name]
            distinct = s.dropna().unique()
            if pd.api.types.is_bool_dtype(s):
                info = ColumnInfo(str(name), "boolean", [True, False])
            elif pd.api.types.is_datetime64_any_dtype(s):
                info = ColumnInfo(str(name), "datetime")
            elif pd.api.types.is_numeric_dtype(s):
                values = sorted(v.item() if hasattr(v, "item") else v for v in distinct)
                info = ColumnInfo(str(name), "numeric", values if len(values) <= 2 else [])
            elif len(distinct) <= max_values:
                info = ColumnInfo(str(name), "categorical", sorted((v for v in distinct), key=str))
            else:
                info = ColumnInfo(str(name), "other")
            columns[info.name] = info
        return cls(columns)

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> "Vocabulary":
        cols = card.get("columns")
        items: list[tuple[str, Mapping[str, Any]]]
        if isinstance(cols, Mapping):
            items = [(str(k), v if isinstance(v, Mapping) else {"kind": v}) for k, v in cols.items()]
        elif isinstance(cols, list):
            items = [(str(c["name"]), c) for c in cols if isinstance(c, Mapping) and "name" in c]
        else:
            raise InterpretError("A schema mapping needs 'columns': {name: {kind, values}} or a list of {name, kind}.")
        columns: dict[str, ColumnInfo] = {}
        for name, c in items:
            kind = str(c.get("kind", "categorical"))
            values = list(c.get("values", c.get("categories", [])) or [])
            k: Kind = (
                "boolean" if kind == "boolean" else "categorical" if kind in ("categorical", "category", "label")
                else "datetime" if kind == "datetime" else "numeric" if kind in ("continuous", "integer", "numeric") else "other"
            )
            if k == "boolean" and not values:
                values = [True, False]
            columns[name] = ColumnInfo(name, k, values, list(c.get("synonyms", [])),
                                       {str(a): list(b) for a, b in (c.get("value_synonyms") or {}).items()})
        return cls(columns)

    def add_metadata(self, metadata: Mapping[str, Any]) -> None:
        cols = metadata.get("columns", {})
        entries = cols.items() if isinstance(cols, Mapping) else [(c.get("name"), c) for c in cols]
        for name, entry in entries:
            if name not in self.columns or not isinstance(entry, Mapping):
                continue
            info = self.columns[name]
            info.synonyms.extend(entry.get("synonyms", []))
            for label, words in (entry.get("value_synonyms") or {}).items():
                info.value_synonyms.setdefault(str(label), []).extend(words)

    # -------------------------------------------------------------- look up
    def known_columns(self) -> str:
        return ", ".join(repr(c) for c in self.columns)

    def column(self, text: str, notes: list[str] | None = None) -> ColumnInfo | None:
        """The column ``text`` names (case, plurals, synonyms, word stems, close spellings), or None."""
        names = {}
        for info in self.columns.values():
            for alias in (info.name, *info.synonyms):
                names.setdefault(norm(alias), info)
        return _lookup(text, names, "column", notes, stem=True)

    def value(self, info: ColumnInfo, text: str, notes: list[str] | None = None) -> Any:
        """The label of ``info`` that ``text`` names, or None."""
        exact = [v for v in info.values if str(v).strip().lower() == str(text).strip().lower()]
        if len(exact) == 1:  # before the loose forms, which may merge labels (" <=50K" and " >50K" both read "50k")
            return exact[0]
        labels = {}
        for v in info.values:
            labels.setdefault(norm(v), v)
        for label, words in info.value_synonyms.items():
            match = [v for v in info.values if str(v) == label or norm(v) == norm(label)]
            for w in words:
                labels.setdefault(norm(w), match[0] if match else label)
        return _lookup(text, labels, f"value of {info.name!r}", notes, stem=False, none=_MISSING)

    def suggest(self, text: str, choices: Sequence[str]) -> str:
        close = difflib.get_close_matches(norm(text), {norm(c): c for c in choices}, n=3, cutoff=SUGGEST)
        mapping = {norm(c): c for c in choices}
        return f" Did you mean {' or '.join(repr(mapping[c]) for c in close)}?" if close else ""


_MISSING = object()


def _lookup(text: str, table: Mapping[str, Any], what: str, notes: list[str] | None, *, stem: bool, none: Any = None) -> Any:
    key = norm(text)
    if not key:
        return none
    if key in table:
        return table[key]
    words = str(text).split()
    plural = norm(" ".join(words[:-1] + [singular(words[-1])])) if words else key
    if plural in table:
        return table[plural]
    if stem and len(key) >= 4:
        # "fraudulent" names the column "fraud", "incomes" "income": one known name begins the word (4+ letters).
        starts = [k for k in table if len(k) >= 4 and key.startswith(k)]
        if len(starts) == 1:
            if notes is not None:
                notes.append(f"read {text!r} as the {what} {_shown(table[starts[0]])}")
            return table[starts[0]]
    close = difflib.get_close_matches(key, list(table), n=2, cutoff=ACCEPT)
    if len(close) == 1 or (len(close) == 2 and difflib.SequenceMatcher(None, key, close[0]).ratio()
                           > difflib.SequenceMatcher(None, key, close[1]).ratio()):
        if notes is not None:
            notes.append(f"read {text!r} as the {what} {_shown(table[close[0]])} (a close spelling)")
        return table[close[0]]
    return none


def _shown(found: Any) -> str:
    return repr(found.name) if isinstance(found, ColumnInfo) else repr(found)
