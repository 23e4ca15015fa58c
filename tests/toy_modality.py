"""A toy modality defined outside the engine: 3-D float sequences ``(n, T, C)``.

It proves the core knows no modality: a front door, an encoder and a torch model
written here, registered at run time, go through fit, sample, save, load, the
CLI, sharded sampling and the Serve app without any file of the engine naming it.

The model is deliberately small but real: a per-(step, channel) Gaussian whose
mean and log-scale are learned by gradient descent on the negative log-likelihood,
through the engine's one Ray Train loop.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from engine.core.contract import BatchSampler, TorchSynthModel
from engine.core.errors import InvalidDataError
from engine.core.registry import Modality
from engine.core.seeds import seed_streams
from engine.core.synthesizer import Synthesizer, check_count, check_seed, reading
from engine.store.artifact import Artifact


@dataclass(frozen=True)
class SequenceLayout:
    """Encoded sequences: ``steps`` time steps of ``channels`` standardised channels."""

    steps: int
    channels: int

    def to_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "channels": self.channels}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SequenceLayout:
        return cls(int(d["steps"]), int(d["channels"]))


class SequenceScaler:
    """Per-channel standardisation, fitted on the training sequences and reversible."""

    def fit(self, x: np.ndarray) -> SequenceScaler:
        self.mean_ = x.mean(axis=(0, 1))
        self.std_ = x.std(axis=(0, 1)) + 1e-6
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean_) / self.std_).astype(np.float32)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        return z * self.std_ + self.mean_

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean_.tolist(), "std": self.std_.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SequenceScaler:
        scaler = cls()
        scaler.mean_, scaler.std_ = np.asarray(d["mean"]), np.asarray(d["std"])
        return scaler


@dataclass
class ToyGaussianConfig:
    lr: float = 0.05


class SequenceBatches(BatchSampler):
    """Shuffled minibatches ``(B, T, C)`` of one worker's shard of sequences."""

    def __init__(self, data: np.ndarray, batch_size: int, rng: np.random.Generator):
        self.data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        if self.data.ndim != 3:
            raise InvalidDataError(f"The toy sequence model trains on (n, T, C) sequences; its shard has shape {tuple(self.data.shape)}.")
        self.batch_size, self.rng = min(batch_size, len(self.data)), rng

    def __len__(self) -> int:
        return len(self.data) // self.batch_size

    def epoch(self) -> Iterator[torch.Tensor]:
        order = torch.from_numpy(self.rng.permutation(len(self.data)))
        for i in range(len(self)):
            yield self.data[order[i * self.batch_size : (i + 1) * self.batch_size]]


class ToyGaussian(TorchSynthModel):
    """A Gaussian per (step, channel), learned by gradient descent."""

    name: ClassVar[str] = "toy_gaussian"
    config_class: ClassVar[type] = ToyGaussianConfig
    layout_class: ClassVar[type] = SequenceLayout

    def __init__(self, config: ToyGaussianConfig, layout: SequenceLayout):
        super().__init__(config, layout)
        net = nn.Module()
        net.mean = nn.Parameter(torch.zeros(layout.steps, layout.channels))
        net.log_scale = nn.Parameter(torch.zeros(layout.steps, layout.channels))
        self.nets["gaussian"] = net

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"gaussian": torch.optim.Adam(self.nets.parameters(), lr=self.config.lr)}

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        return SequenceBatches(data, batch_size, rng)

    def train_step(self, batch: torch.Tensor, optimizers, generator: torch.Generator) -> dict[str, float]:
        net = self.unwrapped("gaussian")
        # Negative log-likelihood of the batch (B, T, C) under N(mean, exp(log_scale)^2), constants dropped.
        nll = (((batch - net.mean) / net.log_scale.exp()) ** 2 / 2 + net.log_scale).mean()
        optimizers["gaussian"].zero_grad()
        nll.backward()
        optimizers["gaussian"].step()
        return {"nll": float(nll)}

    def generate(self, num_rows: int, conditions: Any, generator: torch.Generator) -> np.ndarray:
        net = self.unwrapped("gaussian")
        with torch.no_grad():
            noise = torch.randn(num_rows, self.layout.steps, self.layout.channels, generator=generator)
            return (net.mean + noise * net.log_scale.exp()).numpy()


def _read_sequences(data: Any) -> np.ndarray:
    if isinstance(data, (str, os.PathLike)):
        data = np.load(data)
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 3 or len(x) == 0:
        raise InvalidDataError(f"Toy sequences must be a non-empty (n, T, C) array; got shape {x.shape}.")
    return x


class ToySequenceSynthesizer(Synthesizer):
    """The toy modality's front door: ``fit`` an ``(n, T, C)`` array (or ``.npy`` path), ``sample`` sequences."""

    modality = "toy_sequence"
    default_epochs = {"toy_gaussian": 5}
    default_batch_size = {"toy_gaussian": 32}

    def __init__(self, model: str = "toy_gaussian", **options: Any):
        super().__init__(model, **options)
        self._model: ToyGaussian | None = None
        self._scaler: SequenceScaler | None = None

    def fit(self, data: Any, *, epochs: int | None = None, batch_size: int | None = None, seed: int = 0,
            show_progress: bool = False, **train_options: Any) -> ToySequenceSynthesizer:
        x = _read_sequences(data)
        self._scaler = SequenceScaler().fit(x)
        layout = SequenceLayout(steps=x.shape[1], channels=x.shape[2])
        self._model = self._train_torch(layout=layout, data=self._scaler.transform(x), epochs=epochs,
                                        batch_size=batch_size, seed=seed, show_progress=show_progress, **train_options)
        return self

    def _require_fitted(self) -> tuple[ToyGaussian, SequenceScaler]:
        if self._model is None or self._scaler is None:
            raise self._not_fitted()
        return self._model, self._scaler

    def sample(self, num_sequences: int, *, seed: int | None = None, stream: int = 0) -> np.ndarray:
        model, scaler = self._require_fitted()
        gen, _ = seed_streams(check_seed(seed), stream)
        return scaler.inverse_transform(model.generate(check_count(num_sequences, "num_sequences"), None, gen))

    def parse_conditions(self, conditions: Any) -> None:
        if conditions:
            raise InvalidDataError(f"The toy sequence model takes no conditions; got {conditions!r}.")

    def sample_table(self, num_rows: int, *, conditions: Any = None, seed: int, stream: int = 0, row_offset: int = 0) -> pa.Table:
        """Long format: one row per (sequence, step), a column per channel; sequence ids unique across shards."""
        self.parse_conditions(conditions)
        x = self.sample(num_rows, seed=seed, stream=stream)
        n, steps, channels = x.shape
        columns = {
            "sequence_id": np.repeat(np.arange(row_offset, row_offset + n), steps),
            "step": np.tile(np.arange(steps), n),
            **{f"c{c}": x[:, :, c].reshape(-1) for c in range(channels)},
        }
        return pa.table(columns)

    def describe(self) -> dict[str, Any]:
        model, _ = self._require_fitted()
        return {**super().describe(), "sequence": model.layout.to_dict()}

    def to_device(self, device: str) -> str:
        model, _ = self._require_fitted()
        model.to(device)
        return str(model.device)

    def _artifact(self) -> Artifact:
        model, scaler = self._require_fitted()
        return Artifact(model=self.model, config={}, schema=model.layout.to_dict(), preprocessor=scaler.to_dict(),
                        tensors=model.state_tensors())

    @classmethod
    def _from_artifact(cls, art: Artifact) -> ToySequenceSynthesizer:
        with reading("config.json"):
            synth = cls(art.model, model_config=art.config.get("model_config", {}))
        with reading("preprocessor.json"):
            synth._scaler = SequenceScaler.from_dict(art.preprocessor)
        with reading("weights.safetensors"):
            model = ToyGaussian(synth._config_object(), SequenceLayout.from_dict(art.schema))
            model.load_state_tensors(art.tensors)
        synth._model = model
        return synth


TOY = Modality(
    name="toy_sequence",
    synthesizer=ToySequenceSynthesizer,
    models={"toy_gaussian": ToyGaussian},
    formats=("json", "parquet", "csv"),
    unit="sequence",
    description="toy 3-D sequences (a test plugin)",
)
