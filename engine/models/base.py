"""The model contract: what every generator of the engine provides.

A torch model owns the maths (networks, losses, one training step, generation);
the training loop in ``engine.training`` owns epochs, devices, DDP wrapping,
checkpoints and Ray. A model adds no Ray code of its own.

Models work on *encoded* data: a float32 matrix of rows whose shape a
layout describes: an :class:`~engine.transforms.layout.EncodedLayout` (column
blocks of an encoded table) for tabular models, an
:class:`~engine.transforms.images.ImageLayout` (flattened pixels and a label
slot) for image models. A model names its layout type in ``layout_class``, so
the training loop rebuilds it on a worker without knowing the modality.
Encoding and decoding belong to ``engine.transforms``; the synthesizer front
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

from engine.transforms.layout import EncodedLayout

# Rows a tabular model generates per forward pass: large enough for efficient matrix products,
# small enough to stay in cache.
GENERATION_CHUNK_ROWS = 4096


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


class ImageBatches(BatchSampler):
    """Shuffled ``(images, labels)`` minibatches of encoded image rows (see ``engine.transforms.images``).

    Yields images ``(B, C, H, W)`` in [-1, 1] and int64 labels ``(B,)`` (-1 when
    unlabelled). ``steps_per_batch > 1`` yields that many consecutive minibatches
    stacked on a leading axis, for models that take several critic steps on
    fresh data per optimisation step.
    """

    def __init__(self, data: np.ndarray, shape: tuple[int, int, int], batch_size: int,
                 rng: np.random.Generator, steps_per_batch: int = 1):
        self.pixels = torch.from_numpy(np.ascontiguousarray(data[:, :-1], dtype=np.float32)).reshape(len(data), *shape)
        self.labels = torch.from_numpy(np.rint(data[:, -1]).astype(np.int64))
        self.rng = rng
        self.steps = steps_per_batch
        # A shard smaller than one batch still trains: the batch shrinks to the shard.
        self.batch_size = max(1, min(batch_size, len(data) // steps_per_batch))

    def __len__(self) -> int:
        return max(1, len(self.pixels) // (self.batch_size * self.steps))

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        take = self.batch_size * self.steps
        n = len(self.pixels)
        if n >= take:
            order = torch.from_numpy(self.rng.permutation(n))
        else:
            # A shard with fewer rows than steps (3 images, 5 critic iterations) cannot fill one step with
            # distinct rows; successive shuffles repeat them, rather than taking fewer steps than configured.
            order = torch.from_numpy(np.concatenate([self.rng.permutation(n) for _ in range(-(-take // n))])[:take])
        for i in range(len(self)):
            idx = order[i * take : (i + 1) * take]
            images, labels = self.pixels[idx], self.labels[idx]
            if self.steps > 1:
                images = images.reshape(self.steps, self.batch_size, *images.shape[1:])
                labels = labels.reshape(self.steps, self.batch_size)
            yield images, labels


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
    layout_class: ClassVar[type] = EncodedLayout

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


class TabularTorchModel(TorchSynthModel):
    """A torch model of encoded tables (CTGAN, TVAE): it draws hard rows in span form.

    One number per span of the :class:`EncodedLayout`: a value span's scalar, a
    one-hot span's index (see ``engine.transforms.layout``). Decoding reads that
    form, so sampling never builds the wide one-hot matrix; :meth:`generate`
    gives the one-hot rows of the contract from it.
    """

    @abstractmethod
    def generate_spans(
        self, num_rows: int, conditions: Mapping[str, int] | None, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> np.ndarray:
        """``num_rows`` hard rows in span form, float32 ``(num_rows, len(layout.spans))``.

        ``conditions`` as for :meth:`generate`; the network's matrix products run in ``dtype``
        (see ``engine.models.precision``).
        """

    def generate(
        self, num_rows: int, conditions: Mapping[str, int] | None, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> np.ndarray:
        """``num_rows`` hard encoded rows ``(num_rows, layout.dim)``: :meth:`generate_spans` as one-hots."""
        return self.layout.one_hot(self.generate_spans(num_rows, conditions, generator, dtype=dtype))
