"""What the torch models of tables (CTGAN, TVAE) share beyond the engine's model contract."""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch

from engine.core.contract import TorchSynthModel
from engine.tabular.transforms.layout import EncodedLayout

# Rows a tabular model generates per forward pass: large enough for efficient matrix products,
# small enough to stay in cache.
GENERATION_CHUNK_ROWS = 4096


class TabularTorchModel(TorchSynthModel):
    """A torch model of encoded tables (CTGAN, TVAE): it draws hard rows in span form.

    One number per span of the :class:`EncodedLayout`: a value span's scalar, a
    one-hot span's index (see ``engine.tabular.transforms.layout``). Decoding reads that
    form, so sampling never builds the wide one-hot matrix; :meth:`generate`
    gives the one-hot rows of the contract from it.
    """

    layout_class: ClassVar[type] = EncodedLayout

    @abstractmethod
    def generate_spans(
        self, num_rows: int, conditions: Mapping[str, int] | None, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> np.ndarray:
        """``num_rows`` hard rows in span form, float32 ``(num_rows, len(layout.spans))``.

        ``conditions`` as for :meth:`generate`; the network's matrix products run in ``dtype``
        (see ``engine.core.precision``).
        """

    def generate(
        self, num_rows: int, conditions: Mapping[str, int] | None, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> np.ndarray:
        """``num_rows`` hard encoded rows ``(num_rows, layout.dim)``: :meth:`generate_spans` as one-hots."""
        return self.layout.one_hot(self.generate_spans(num_rows, conditions, generator, dtype=dtype))
