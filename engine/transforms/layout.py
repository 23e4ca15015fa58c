"""The layout of an encoded table: which slice of the encoded matrix holds what.

Models read the layout to apply the right activation to each slice of their
output (tanh for a scalar, softmax/gumbel for a one-hot block) and CTGAN reads
it to build its conditional vector over the discrete blocks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

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

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [s.to_dict() for s in self.spans]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EncodedLayout":
        return cls(spans=tuple(Span.from_dict(s) for s in d["spans"]))
