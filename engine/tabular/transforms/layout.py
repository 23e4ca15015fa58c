"""The layout of an encoded table: which slice of the encoded matrix holds what.

Models read the layout to apply the right activation to each slice of their
output (tanh for a scalar, softmax/gumbel for a one-hot block) and CTGAN reads
it to build its conditional vector over the discrete blocks.

A hard encoded row (exact one-hots) has a compact *span form*: one number per
span, the scalar of a ``tanh`` span or the position of the 1 in a one-hot
span. Generation produces it and decoding reads it, so a sampled row never
exists as a wide one-hot matrix; :meth:`EncodedLayout.span_values` and
:meth:`EncodedLayout.one_hot` convert between the two forms.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Activation = Literal["tanh", "softmax"]
SpanRole = Literal["value", "mode", "category", "missing"]


@dataclass(frozen=True)
class Span:
    """A contiguous block of columns in the encoded matrix.

    Attributes:
        column: the source column the block encodes.
        start: index of the first encoded column.
        width: number of encoded columns (1 for a tanh scalar).
        activation: ``tanh`` for a scalar in [-1, 1], ``softmax`` for a one-hot block.
        role: ``value`` (normalised scalar of a continuous column), ``mode``
            (one-hot of its mixture component), ``category`` (one-hot of a
            categorical or boolean column; the blocks CTGAN conditions on),
            ``missing`` (one-hot [present, missing] of a nullable numeric column).
    """

    column: str
    start: int
    width: int
    activation: Activation
    role: SpanRole

    @property
    def stop(self) -> int:
        return self.start + self.width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Span":
        return cls(**d)


@dataclass(frozen=True)
class EncodedLayout:
    """All spans of an encoded table, in order; ``dim`` is the matrix width."""

    spans: tuple[Span, ...]

    @property
    def dim(self) -> int:
        return self.spans[-1].stop if self.spans else 0

    @property
    def category_spans(self) -> tuple[Span, ...]:
        return tuple(s for s in self.spans if s.role == "category")

    def category_span(self, column: str) -> Span:
        for s in self.spans:
            if s.role == "category" and s.column == column:
                return s
        raise KeyError(column)

    def span_positions(self) -> dict[tuple[str, str], int]:
        """The index in :attr:`spans` (and in the span form) of each ``(column, role)``."""
        return {(s.column, s.role): j for j, s in enumerate(self.spans)}

    def span_values(self, encoded: np.ndarray) -> np.ndarray:
        """The span form ``(n, len(spans))`` of encoded rows ``(n, dim)``: each one-hot block's largest entry."""
        encoded = np.asarray(encoded)
        out = np.empty((len(encoded), len(self.spans)), dtype=np.float32)
        for j, s in enumerate(self.spans):
            block = encoded[:, s.start : s.stop]
            out[:, j] = block[:, 0] if s.activation == "tanh" else block.argmax(axis=1)
        return out

    def one_hot(self, values: np.ndarray) -> np.ndarray:
        """Encoded rows ``(n, dim)`` of rows in span form: the inverse of :meth:`span_values` on hard rows."""
        values = np.asarray(values)
        out = np.zeros((len(values), self.dim), dtype=np.float32)
        rows = np.arange(len(values))
        for j, s in enumerate(self.spans):
            if s.activation == "tanh":
                out[:, s.start] = values[:, j]
            else:
                out[rows, s.start + values[:, j].astype(np.int64)] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [s.to_dict() for s in self.spans]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EncodedLayout":
        return cls(spans=tuple(Span.from_dict(s) for s in d["spans"]))
