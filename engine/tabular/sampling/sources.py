"""Row sources: a fitted model paired with the decoder that turns its output into a table."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.tabular.models.base import TabularTorchModel
from engine.tabular.models.gaussian_copula import GaussianCopula
from engine.core.precision import check_precision, generation_dtype
from engine.tabular.schema.kinds import ColumnKind, TableSchema
from engine.tabular.transforms.columns import TableCodec
from engine.tabular.transforms.tabular import TabularEncoder


def _assign_identifiers(codec: TableCodec, schema: TableSchema, table: pd.DataFrame, row_offset: int) -> pd.DataFrame:
    for col in schema.of_kind(ColumnKind.IDENTIFIER):
        table[col.name] = codec.identifier_values(col.name, start=row_offset, count=len(table))
    return table


class TorchRowSource:
    """A torch model (ctgan, tvae) and its mode-specific encoder.

    ``precision`` is the numeric precision of generation (see ``engine.core.precision``).
    """

    def __init__(self, model: TabularTorchModel, encoder: TabularEncoder, schema: TableSchema, precision: str = "auto"):
        self.model = model
        self.encoder = encoder
        self.schema = schema
        self.precision = check_precision(precision)
        self.supports_native_conditions = model.supports_native_conditions

    def category_index(self, column: str, value: Any) -> int:
        return self.encoder.category_index(column, value)

    def draw(
        self,
        num_rows: int,
        category_conditions: Mapping[str, int] | None,
        generator: torch.Generator,
        rng: np.random.Generator,
    ) -> pd.DataFrame:
        dtype = generation_dtype(self.precision, self.model.device)
        spans = self.model.generate_spans(num_rows, category_conditions, generator, dtype=dtype)
        return self.encoder.inverse_transform_spans(spans, rng=rng)

    def assign_identifiers(self, table: pd.DataFrame, row_offset: int) -> pd.DataFrame:
        return _assign_identifiers(self.encoder.codec_, self.schema, table, row_offset)


class CopulaRowSource:
    """The Gaussian copula and the column codec it models the numeric frame of."""

    supports_native_conditions = True

    def __init__(self, model: GaussianCopula, codec: TableCodec, schema: TableSchema):
        self.model = model
        self.codec = codec
        self.schema = schema

    def category_index(self, column: str, value: Any) -> int:
        return self.codec.category_code(column, value)

    def draw(
        self,
        num_rows: int,
        category_conditions: Mapping[str, int] | None,
        generator: torch.Generator,
        rng: np.random.Generator,
    ) -> pd.DataFrame:
        frame = self.model.generate_frame(num_rows, category_conditions, generator)
        return self.codec.from_numeric(frame, rng=rng)

    def assign_identifiers(self, table: pd.DataFrame, row_offset: int) -> pd.DataFrame:
        return _assign_identifiers(self.codec, self.schema, table, row_offset)
