"""The memorisation guard: generated texts that copy a training text, or share a long n-gram with one, are caught.

Texts are compared as lower-cased word tokens (words and punctuation marks), so
a copy is caught whatever the tokenizer and whitespace. The guard keeps only
64-bit hashes of the training texts and of their n-grams (BLAKE2b, the same in
every process), never the texts themselves, so it can be saved inside the model
artifact without putting the training corpus there.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_NGRAM = 8
_WORDS = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of ``text``."""
    return _WORDS.findall(text.lower())


def _hash(tokens: Sequence[str]) -> int:
    digest = hashlib.blake2b("\x1f".join(tokens).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _ngram_hashes(tokens: Sequence[str], n: int) -> Iterable[int]:
    for i in range(len(tokens) - n + 1):
        yield _hash(tokens[i : i + n])


@dataclass
class MemorizationGuard:
    """Hashes of the training texts (``texts``) and of their word ``n``-grams (``ngrams``), sorted int64 arrays."""

    n: int
    texts: np.ndarray
    ngrams: np.ndarray

    @classmethod
    def fit(cls, corpus: Iterable[str], n: int = DEFAULT_NGRAM) -> MemorizationGuard:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"The memorisation n-gram length must be an integer >= 1. Got {n!r} instead.")
        text_hashes, gram_hashes = [], []
        for text in corpus:
            tokens = words(text)
            text_hashes.append(_hash(tokens))
            gram_hashes.extend(_ngram_hashes(tokens, n))
        return cls(n, np.unique(np.asarray(text_hashes, dtype=np.int64)), np.unique(np.asarray(gram_hashes, dtype=np.int64)))

    def reasons(self, texts: Sequence[str]) -> list[str | None]:
        """For each text: ``"copy"`` (a training text, up to case and spacing), ``"ngram"`` (shares a word
        ``n``-gram with one), or None (new)."""
        out: list[str | None] = []
        for text in texts:
            tokens = words(text)
            if np.isin(_hash(tokens), self.texts):
                out.append("copy")
            elif len(tokens) >= self.n and np.isin(np.fromiter(_ngram_hashes(tokens, self.n), dtype=np.int64), self.ngrams).any():
                out.append("ngram")
            else:
                out.append(None)
        return out

    def counts(self, texts: Sequence[str]) -> dict[str, int]:
        r = self.reasons(texts)
        return {"checked": len(r), "copies": r.count("copy"), "ngram_overlaps": r.count("ngram")}

    def to_tensors(self) -> dict[str, "np.ndarray"]:
        return {"texts": self.texts, "ngrams": self.ngrams}

    @classmethod
    def from_arrays(cls, n: int, texts: np.ndarray, ngrams: np.ndarray) -> MemorizationGuard:
        return cls(int(n), np.asarray(texts, dtype=np.int64), np.asarray(ngrams, dtype=np.int64))
