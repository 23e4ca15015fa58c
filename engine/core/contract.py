"""The model contract: what every generator of the engine provides.

A torch model owns the maths (networks, losses, one training step, generation);
the training loop in ``engine.training`` owns epochs, devices, DDP wrapping,
checkpoints and Ray. A model adds no Ray code of its own.

Models work on *encoded* data: a float32 matrix of rows whose shape a
layout describes: an :class:`~engine.tabular.transforms.layout.EncodedLayout` (column
blocks of an encoded table) for tabular models, an
:class:`~engine.images.transforms.ImageLayout` (flattened pixels and a label
slot) for image models. A model names its layout type in ``layout_class``, so
the training loop rebuilds it on a worker without knowing the modality.
Encoding and decoding belong to ``engine.tabular.transforms``; the synthesizer front
doors chain them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn




class BatchSampler(ABC):
    """Draws the training batches of one epoch from one worker's shard."""

    @abstractmethod
    def epoch(self) -> Iterator[Any]:
        """Yield the batches of one epoch (tensors or tuples of tensors on the CPU)."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of batches per epoch."""


class ShuffledBatches(BatchSampler):
    """Plain shuffled minibatches of a matrix; the default for most models."""

    def __init__(self, data: np.ndarray, batch_size: int, rng: np.random.Generator, drop_last: bool = True):
        self.data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        self.batch_size = batch_size
        self.rng = rng
        self.drop_last = drop_last and len(data) >= batch_size

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self) -> Iterator[torch.Tensor]:
        order = torch.from_numpy(self.rng.permutation(len(self.data)))
        for i in range(len(self)):
            yield self.data[order[i * self.batch_size : (i + 1) * self.batch_size]]


class TorchSynthModel(ABC):
    """A generator trained with torch by the engine's one training loop.

    Subclasses set ``name`` and ``config_class`` (a dataclass) and build their
    networks into ``self.nets``, an ``nn.ModuleDict`` of every trainable module.
    The training loop may replace entries of ``self.nets`` by DDP wrappers; use
    :meth:`unwrapped` where the bare module is needed (generation, saving, a
    second forward pass that must not trigger DDP's reducer). Modules that are
    learned state but not trained by gradients (an EMA copy of the weights) go
    in ``self.shadow_nets``: moved to the device and saved, never wrapped.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    layout_class: ClassVar[type]

    def __init__(self, config: Any, layout: Any):
        self.config = config
        self.layout = layout
        self.nets = nn.ModuleDict()
        self.shadow_nets = nn.ModuleDict()

    # -- construction -----------------------------------------------------
    @classmethod
    def config_from_dict(cls, d: Mapping[str, Any]) -> Any:
        known = {f.name for f in fields(cls.config_class)}
        return cls.config_class(**{k: v for k, v in d.items() if k in known})

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    @property
    def device(self) -> torch.device:
        for p in self.nets.parameters():
            return p.device
        return torch.device("cpu")

    def unwrapped(self, key: str) -> nn.Module:
        net = self.nets[key]
        return net.module if hasattr(net, "module") else net

    # -- training ---------------------------------------------------------
    @abstractmethod
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Build the optimisers (called after the nets are on their device and wrapped)."""

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        """How batches are drawn from one worker's shard of encoded rows."""
        return ShuffledBatches(data, batch_size, rng)

    @abstractmethod
    def train_step(
        self, batch: Any, optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        """Take one optimisation step on a batch (already on ``self.device``); return losses."""

    # -- generation -------------------------------------------------------
    @abstractmethod
    def generate(
        self, num_rows: int, conditions: Any, generator: torch.Generator
    ) -> np.ndarray:
        """Return ``num_rows`` encoded rows, float32 ``(num_rows, layout.dim)``.

        A tabular model's one-hot blocks are hard: exactly one 1 per block and row.

        ``conditions`` depends on the modality. Tabular models get a mapping of
        a categorical column to the index of the requested category inside its
        ``category`` span; models that cannot condition natively raise
        ``NotImplementedError`` and the caller falls back to rejection. Image
        models get ``None`` or one class index per image (int64 ``(num_rows,)``).
        """

    supports_native_conditions: ClassVar[bool] = False

    # -- state ------------------------------------------------------------
    def _modules_by_key(self) -> dict[str, nn.Module]:
        return {**{key: self.unwrapped(key) for key in self.nets}, **dict(self.shadow_nets.items())}

    def to(self, device: torch.device | str) -> TorchSynthModel:
        """Move every module (trained and shadow) to ``device``."""
        self.nets.to(device)
        self.shadow_nets.to(device)
        return self

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All learned tensors, flat, for safetensors (bare modules, on the CPU)."""
        out: dict[str, torch.Tensor] = {}
        for key, module in self._modules_by_key().items():
            for name, t in module.state_dict().items():
                out[f"{key}.{name}"] = t.detach().cpu().contiguous()
        return out

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        for key, module in self._modules_by_key().items():
            prefix = f"{key}."
            sub = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            module.load_state_dict(sub)

    def extra_state(self) -> dict[str, Any]:
        """JSON-serialisable state beyond tensors (e.g. category frequencies)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass


def iter_chunks(total: int, chunk: int) -> Iterable[int]:
    """Sizes of consecutive chunks that add up to ``total``."""
    while total > 0:
        take = min(chunk, total)
        yield take
        total -= take
