"""The model contract: what every generator of the engine provides.

A torch model owns the maths (networks, losses, one training step, generation);
the training loop in ``engine.training`` owns epochs, devices, DDP wrapping,
checkpoints and Ray. A model adds no Ray code of its own.

Models work on *encoded* data whose shape a layout describes: an
:class:`~engine.tabular.transforms.layout.EncodedLayout` (column blocks of an
encoded table) for tabular models, an :class:`~engine.images.transforms.ImageLayout`
(flattened pixels and a label slot) for image models. A model names its layout
type in ``layout_class``, so the training loop rebuilds it on a worker without
knowing the modality. Encoding and decoding belong to the modality packages;
the synthesizer front doors chain them.

The training data of a model is whatever its batch sampler reads: one array of
samples of any rank (a float32 matrix of encoded rows, ``(N, T, C)`` sequences,
waveforms) or a dict of equal-length arrays (``{"x": (N, T, C), "mask": (N, T)}``),
and a batch is whatever the sampler yields (a tensor, a dict or tuple of
tensors). The loop hands :meth:`TorchSynthModel.batch_sampler` each worker's
shard in the structure the data had, or, with ``TrainOptions(stream=True)``, a
:class:`ShardStream` that reads the shard afresh every epoch.

Beyond one ``train_step`` per batch, the loop offers what a model opts into:
training phases (:class:`Phase`, :meth:`TorchSynthModel.phases`), gradient
accumulation (``supports_grad_accumulation``, :class:`Accumulation`), fp16
loss scaling (``supports_fp16``, :meth:`TorchSynthModel.backward`) and streamed
shards (:meth:`TorchSynthModel.supports_streaming`); learning-rate schedules
and bf16 autocast need nothing from the model.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

DEFAULT_PHASE = "train"  # the name of the one phase of a model that declares none


def map_arrays(fn: Callable[[Any], Any], data: Any) -> Any:
    """Apply ``fn`` to every array or tensor of a shard or batch, keeping its structure.

    The structure is an array/tensor, or a dict, tuple or list of them (nested at will).
    """
    if isinstance(data, Mapping):
        return {k: map_arrays(fn, v) for k, v in data.items()}
    if isinstance(data, (tuple, list)):
        return type(data)(map_arrays(fn, v) for v in data)
    return fn(data)


def num_samples(data: Any) -> int:
    """The number of samples (the common leading length) of a shard's arrays.

    Raises ``ValueError`` naming the lengths when the arrays of a dict or tuple disagree.
    """
    lengths: list[int] = []
    map_arrays(lambda a: lengths.append(len(a)), data)
    if not lengths:
        raise ValueError("The training data holds no arrays.")
    if len(set(lengths)) > 1:
        raise ValueError(f"The arrays of the training data must have one length (one entry per sample). Got lengths {lengths}.")
    return lengths[0]


def batch_tensor(array: Any) -> torch.Tensor:
    """One array of a shard or streamed batch as a CPU tensor.

    Floating point becomes float32, the dtype of the models' weights (mixed precision
    lowers it inside the step where asked); integers (token ids) and bools (padding
    masks) keep their dtype.
    """
    if isinstance(array, torch.Tensor):
        return array.float() if array.is_floating_point() and array.dtype != torch.float32 else array
    a = np.asarray(array)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)
    if not (a.flags.c_contiguous and a.flags.writeable):
        # Ray hands out read-only zero-copy views of Arrow buffers; torch warns on (and must not write) those.
        a = np.array(a, order="C")
    return torch.from_numpy(a)


class BatchSampler(ABC):
    """Draws the training batches of one epoch from one worker's shard."""

    @abstractmethod
    def epoch(self) -> Iterator[Any]:
        """Yield the batches of one epoch (tensors, or dicts or tuples of tensors, on the CPU).

        The loop may stop reading an epoch early (a phase measured in steps ends, a
        resumed run skips the batches it already trained on); batches must be drawn
        lazily, as they are yielded, so that skipping them replays the random draws.
        """

    @abstractmethod
    def __len__(self) -> int:
        """Number of batches per epoch; raise ``TypeError`` when it is only known by reading (a stream)."""


class ShuffledBatches(BatchSampler):
    """Plain shuffled minibatches of a shard held in memory; the default for most models.

    ``data`` is one array of samples of any rank (a matrix of encoded rows, ``(N, T, C)``
    sequences, waveforms) or a dict (or tuple) of equal-length arrays, e.g. token ids and
    their padding mask ``{"ids": (N, T), "mask": (N, T)}``: every array is indexed by the
    same shuffled samples and a batch has the structure of ``data``. Floating point
    becomes float32 (:func:`batch_tensor`).
    """

    def __init__(self, data: Any, batch_size: int, rng: np.random.Generator, drop_last: bool = True):
        self.num_rows = num_samples(data)
        self.data = map_arrays(batch_tensor, data)
        self.batch_size = batch_size
        self.rng = rng
        self.drop_last = drop_last and self.num_rows >= batch_size

    def __len__(self) -> int:
        n = self.num_rows
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self) -> Iterator[Any]:
        order = torch.from_numpy(self.rng.permutation(self.num_rows))
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield map_arrays(lambda t: t[idx], self.data)


class ShardStream(ABC):
    """One worker's shard of a Ray Dataset, read afresh every epoch instead of held in memory.

    The training loop hands one to :meth:`TorchSynthModel.batch_sampler` when
    ``TrainOptions(stream=True)``. Its batches have the structure of the training
    data: a tensor for a Dataset whose only column is ``"data"`` (what an in-memory
    array becomes), else a dict of tensors by column; floating point as float32.
    Every worker reads the same number of rows (Ray Train splits with ``equal=True``).
    """

    num_rows: int | None = None  # rows of the shard when known without reading it

    @abstractmethod
    def iter_batches(
        self, batch_size: int, *, shuffle_buffer_rows: int = 0, seed: int | None = None, drop_last: bool = True
    ) -> Iterator[Any]:
        """One pass over the shard in batches of CPU tensors.

        ``shuffle_buffer_rows > 0`` shuffles within a buffer of that many rows (seeded by
        ``seed``): a stream is never shuffled as a whole.
        """


class StreamingBatches(BatchSampler):
    """Shuffled batches of a :class:`ShardStream`; the default sampler of a streamed shard.

    Each epoch reads the shard again, shuffled within ``shuffle_buffer_rows`` rows
    (default: 8 batches) by a seed drawn from ``rng``, and drops a last short batch so
    that every worker takes the same number of steps. The number of batches is known
    only when the stream knows its rows.
    """

    def __init__(
        self, stream: ShardStream, batch_size: int, rng: np.random.Generator, shuffle_buffer_rows: int | None = None
    ):
        self.stream = stream
        self.batch_size = batch_size
        self.rng = rng
        self.shuffle_buffer_rows = 8 * batch_size if shuffle_buffer_rows is None else shuffle_buffer_rows

    def __len__(self) -> int:
        if self.stream.num_rows is None:
            raise TypeError("A streamed shard's batches are counted only by reading it.")
        return self.stream.num_rows // self.batch_size

    def epoch(self) -> Iterator[Any]:
        seed = int(self.rng.integers(2**31 - 1))  # drawn at the epoch's first batch, like a permutation
        yield from self.stream.iter_batches(
            self.batch_size, shuffle_buffer_rows=self.shuffle_buffer_rows, seed=seed, drop_last=True
        )


@dataclass(frozen=True)
class Phase:
    """One stage of a model's training, e.g. TimeGAN's embedder, supervisor and joint phases.

    The loop sets ``model.phase`` to ``name`` before the phase's first step; ``train_step``
    reads it to choose its losses and optimisers. A phase lasts ``epochs`` epochs or
    ``steps`` optimisation steps (a phase in steps starts a fresh epoch of the data and
    drops the rest of its last one); neither: the run's length (``TrainOptions.epochs``,
    or ``max_steps`` when set).
    """

    name: str
    epochs: int | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"A phase's 'name' must be a non-empty string. Got {self.name!r} instead.")
        if self.epochs is not None and self.steps is not None:
            raise ValueError(f"Phase {self.name!r} must last 'epochs' or 'steps', not both. Got epochs={self.epochs!r}, steps={self.steps!r}.")
        for key in ("epochs", "steps"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"Phase {self.name!r}: {key!r} must be an integer >= 1 or None. Got {value!r} instead.")


@dataclass(frozen=True)
class Accumulation:
    """Where the current ``train_step`` call sits in its optimisation step.

    With ``TrainOptions.grad_accumulation_steps = steps`` an optimisation step is
    ``steps`` calls of ``train_step``, ``index`` 0 to ``steps - 1``.
    """

    index: int = 0
    steps: int = 1

    @property
    def last(self) -> bool:
        """Whether this batch ends the optimisation step: ``optimizer.step()`` updates the weights now."""
        return self.index == self.steps - 1


class TorchSynthModel(ABC):
    """A generator trained with torch by the engine's one training loop.

    Subclasses set ``name`` and ``config_class`` (a dataclass) and build their
    networks into ``self.nets``, an ``nn.ModuleDict`` of every trainable module.
    The training loop may replace entries of ``self.nets`` by DDP wrappers; use
    :meth:`unwrapped` where the bare module is needed (generation, saving, a
    second forward pass that must not trigger DDP's reducer). Modules that are
    learned state but not trained by gradients (an EMA copy of the weights) go
    in ``self.shadow_nets``: moved to the device and saved, never wrapped.

    What a model may opt into:

    * **Phases**: :meth:`phases` lists them; the loop sets ``self.phase`` and
      checkpoints and resumes inside any of them.
    * **Gradient accumulation** (``supports_grad_accumulation = True``): with
      ``grad_accumulation_steps = k`` the loop calls ``train_step`` on ``k``
      batches per optimisation step and hands it stand-ins for its optimisers:
      ``zero_grad()`` does nothing (the loop clears the gradients before the
      first batch), ``step()`` updates only on the last batch
      (``self.accumulation.last``), and every parameter gradient is divided by
      ``k`` as it is computed, so the update is that of the mean loss over the
      ``k`` batches. A ``train_step`` that computes a mean loss over its batch
      and calls ``zero_grad``/``backward``/``step`` qualifies as it is (TVAE);
      work that must happen once per update (gradient clipping, an EMA update)
      goes under ``if self.accumulation.last`` (DDPM). A model that steps two
      optimisers in turn, each loss needing the other network just updated (a
      GAN), cannot declare it and gets a clear error.
    * **fp16** (``supports_fp16 = True``): ``train_step`` backpropagates every
      loss with :meth:`backward` (which applies the loop's loss scale), calls
      :meth:`unscale_gradients` before clipping, and takes no
      ``torch.autograd.grad`` of a scaled loss. bf16 needs nothing.
    * **Streamed shards**: :meth:`supports_streaming`.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    layout_class: ClassVar[type]
    supports_grad_accumulation: ClassVar[bool] = False
    supports_fp16: ClassVar[bool] = False

    def __init__(self, config: Any, layout: Any):
        self.config = config
        self.layout = layout
        self.nets = nn.ModuleDict()
        self.shadow_nets = nn.ModuleDict()
        self.phase: str = DEFAULT_PHASE  # set by the training loop before each phase
        self.accumulation = Accumulation()  # set by the training loop before each train_step
        self.grad_scaler: Any = None  # a torch.amp.GradScaler under fp16, set by the training loop

    # -- construction -----------------------------------------------------
    @classmethod
    def from_pretrained(cls, source: str, config: Any, layout: Any) -> TorchSynthModel:
        """A model built from ``config`` and ``layout`` whose weights start from ``source``.

        ``source`` is a local folder or a hub id holding ``model.safetensors`` with this model's
        tensors (as :meth:`state_tensors` names them), read with safetensors; hub ids are read
        from the local cache first. Families whose weights come in another library's format
        (a transformers or diffusers checkpoint) override this and load with that library.
        """
        from engine.core.pretrained import read_pretrained_tensors

        model = cls(config, layout)
        tensors = read_pretrained_tensors(source)
        expected = set(model.state_tensors())
        if set(tensors) != expected:
            from engine.core.errors import ArtifactError

            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise ArtifactError(
                f"The pretrained weights at {source!r} do not fit a {cls.name} of this config: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}."
            )
        try:
            model.load_state_tensors(tensors)
        except RuntimeError as exc:
            from engine.core.errors import ArtifactError

            raise ArtifactError(f"The pretrained weights at {source!r} do not fit a {cls.name} of this config: {exc}") from None
        return model

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

    def batch_sampler(self, data: Any, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        """How batches are drawn from one worker's shard.

        ``data`` is the shard in the structure of the training data (an array of
        samples, or a dict of equal-length arrays), or a :class:`ShardStream` when the
        run streams its shards. The default shuffles the samples
        (:class:`ShuffledBatches`) or the stream (:class:`StreamingBatches`).
        """
        if isinstance(data, ShardStream):
            return StreamingBatches(data, batch_size, rng)
        return ShuffledBatches(data, batch_size, rng)

    @classmethod
    def supports_streaming(cls) -> bool:
        """Whether :meth:`batch_sampler` accepts a :class:`ShardStream` (``TrainOptions(stream=True)``).

        True for a model that keeps the default sampler; a model with its own sampler
        that handles streams too overrides this.
        """
        return cls.batch_sampler is TorchSynthModel.batch_sampler

    def phases(self) -> list[Phase]:
        """The training phases, in order (default: one phase, ``"train"``, as long as the run)."""
        return [Phase(DEFAULT_PHASE)]

    @abstractmethod
    def train_step(
        self, batch: Any, optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        """Take one optimisation step on a batch (already on ``self.device``); return losses.

        ``self.phase`` names the phase in progress; ``self.accumulation`` says which
        batch of an accumulated step this is (see the class docstring).
        """

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss``, scaled by the loop's fp16 loss scale when there is one."""
        scaler = self.grad_scaler
        (loss if scaler is None else scaler.scale(loss)).backward()

    def unscale_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients of ``optimizer`` by the fp16 loss scale (before clipping them); else a no-op."""
        if self.grad_scaler is not None and self.accumulation.last:
            self.grad_scaler.unscale_(getattr(optimizer, "wrapped", optimizer))

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
