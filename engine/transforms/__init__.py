"""Reversible encoders: the column codec (layer 1) and mode-specific normalisation (layer 2)."""
from engine.transforms.columns import TableCodec
from engine.transforms.layout import EncodedLayout, Span
from engine.transforms.mode_normalizer import ModeNormalizer
from engine.transforms.tabular import TabularEncoder

__all__ = ["EncodedLayout", "ModeNormalizer", "Span", "TableCodec", "TabularEncoder"]
