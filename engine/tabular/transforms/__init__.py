"""Reversible encoders: the column codec (layer 1) and mode-specific normalisation (layer 2)."""
from engine.tabular.transforms.columns import TableCodec
from engine.tabular.transforms.layout import EncodedLayout, Span
from engine.tabular.transforms.mode_normalizer import ModeNormalizer
from engine.tabular.transforms.tabular import TabularEncoder

__all__ = ["EncodedLayout", "ModeNormalizer", "Span", "TableCodec", "TabularEncoder"]
