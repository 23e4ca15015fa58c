"""TVAE (Xu et al. 2019): a variational autoencoder for tables, conditioned as CTGAN is.

Encoder and decoder both read CTGAN's conditional vector (one category of one
discrete column set; see ``engine.tabular.models.conditional``): a conditional
VAE. Training draws the condition as CTGAN does (a column uniformly, a category
by log-frequency, then a real row holding it), so rare categories are learned;
generation sets it from the data's frequencies, or from the requested
category, so conditions are met by the model rather than by rejection. Each
one-hot block of a generated row is drawn from the decoder's softmax, not its
most likely entry, so categories (and point masses) appear at their rates.

The conditional input is not in the paper (SDV's TVAE has none); with no
discrete column the vector is empty and the model is the paper's.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.contract import BatchSampler, ShardStream, StreamingBatches
from engine.core.errors import ArtifactError
from engine.tabular.models.base import GENERATION_CHUNK_ROWS, TabularTorchModel
from engine.tabular.models.conditional import ConditionalVector, TrainingSampler
from engine.core.params import Dims, Float, Int, ModelConfig, param
from engine.core.precision import InferenceCopies
from engine.tabular.transforms.layout import EncodedLayout


@dataclass
class TVAEConfig(ModelConfig):
    """Hyperparameters of TVAE (defaults follow the paper's reference settings)."""

    embedding_dim: int = param(128, Int(min=1), "size of the latent code")
    compress_dims: tuple[int, ...] = param((128, 128), Dims(), "encoder widths")
    decompress_dims: tuple[int, ...] = param((128, 128), Dims(), "decoder widths")
    lr: float = param(1e-3, Float(gt=0), "Adam learning rate")
    l2scale: float = param(1e-5, Float(ge=0), "Adam weight decay")
    loss_factor: float = param(2.0, Float(gt=0), "weight of the reconstruction term against the KL term")


def _mlp(in_dim: int, dims: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for d in dims:
        layers += [nn.Linear(in_dim, d), nn.ReLU()]
        in_dim = d
    return nn.Sequential(*layers), in_dim


class Encoder(nn.Module):
    def __init__(self, data_dim: int, dims: tuple[int, ...], embedding_dim: int):
        super().__init__()
        self.body, width = _mlp(data_dim, dims)
        self.mu = nn.Linear(width, embedding_dim)
        self.logvar = nn.Linear(width, embedding_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)  # (B, E), (B, E)


class Decoder(nn.Module):
    def __init__(self, embedding_dim: int, dims: tuple[int, ...], data_dim: int):
        super().__init__()
        self.body, width = _mlp(embedding_dim, dims)
        self.out = nn.Linear(width, data_dim)
        self.sigma = nn.Parameter(torch.full((data_dim,), 0.1))  # per-output noise scale of tanh values

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z))  # (B, data_dim)


class _TVAEBatches(BatchSampler):
    """Per step: conditional vectors drawn as CTGAN draws them and a real row holding each."""

    def __init__(self, cond: ConditionalVector, data: np.ndarray, batch_size: int, rng: np.random.Generator):
        self.cond = cond
        self.sampler = TrainingSampler(data, cond)
        self.batch_size = batch_size
        self.rng = rng
        self.steps = max(1, len(data) // batch_size)

    def __len__(self) -> int:
        return self.steps

    def epoch(self) -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(self.steps):
            columns, categories = self.sampler.sample_conditions(self.batch_size, self.rng)
            yield {"x": self.sampler.sample_rows(columns, categories, self.rng), "cond": self.cond.one_hot(columns, categories)}


class TVAE(TabularTorchModel):
    """Conditional tabular VAE on the model contract; categories are conditioned natively."""

    name: ClassVar[str] = "tvae"
    config_class: ClassVar[type] = TVAEConfig
    supports_native_conditions: ClassVar[bool] = True
    # One optimiser over encoder and decoder, stepped once per train_step: accumulation keeps its maths.
    supports_grad_accumulation: ClassVar[bool] = True

    def __init__(self, config: TVAEConfig, layout: EncodedLayout):
        super().__init__(config, layout)
        self.cond = ConditionalVector(layout)
        self.nets["encoder"] = Encoder(layout.dim + self.cond.dim, config.compress_dims, config.embedding_dim)
        self.nets["decoder"] = Decoder(config.embedding_dim + self.cond.dim, config.decompress_dims, layout.dim)
        self._inference = InferenceCopies()

    @classmethod
    def supports_streaming(cls) -> bool:
        # A streamed shard gives plain row batches: train_step conditions each row on one of its own categories.
        return True

    def batch_sampler(self, data: Any, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        """Training-by-sampling over an in-memory shard; plain shuffled batches of a streamed one."""
        if isinstance(data, ShardStream):
            return StreamingBatches(data, batch_size, rng)
        if not self.cond.num_columns:
            return super().batch_sampler(data, batch_size, rng)
        sampler = _TVAEBatches(self.cond, np.asarray(data), batch_size, rng)
        self.cond.frequencies = sampler.sampler.frequencies  # generation draws categories at the data's rates
        return sampler

    def _own_condition(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """For plain batches: each row conditioned on its own category of a uniformly drawn column."""
        n = x.shape[0]
        cond = x.new_zeros(n, self.cond.dim)
        if not self.cond.num_columns:
            return cond
        columns = torch.randint(0, self.cond.num_columns, (n,), generator=generator).numpy()
        categories = np.empty(n, dtype=np.int64)
        for j, span in enumerate(self.cond.spans):
            rows = np.flatnonzero(columns == j)
            if len(rows):
                categories[rows] = x[torch.from_numpy(rows).to(x.device), span.start : span.stop].argmax(dim=1).cpu().numpy()
        return self.cond.one_hot(columns, categories).to(x.device)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = list(self.nets["encoder"].parameters()) + list(self.nets["decoder"].parameters())
        return {"vae": torch.optim.Adam(params, lr=self.config.lr, weight_decay=self.config.l2scale, foreach=True)}

    def train_step(
        self, batch: torch.Tensor, optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        if isinstance(batch, Mapping):
            x, cond = batch["x"], batch["cond"]  # (B, data_dim), (B, cond_dim)
        else:
            x = batch  # a plain batch of rows (a streamed shard)
            cond = self._own_condition(x, generator)
        mu, logvar = self.nets["encoder"](torch.cat([x, cond], dim=1))
        eps = torch.randn(mu.shape, generator=generator, device="cpu").to(mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        rec = self.nets["decoder"](torch.cat([z, cond], dim=1))
        sigma = self.unwrapped("decoder").sigma
        recon = x.new_zeros(())
        for span in self.layout.spans:
            s, e = span.start, span.stop
            if span.activation == "tanh":
                std = sigma[s:e]
                recon = recon + ((x[:, s:e] - torch.tanh(rec[:, s:e])) ** 2 / 2 / std**2).sum() + torch.log(std).sum() * x.shape[0]
            else:
                recon = recon + F.cross_entropy(rec[:, s:e], x[:, s:e].argmax(dim=1), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
        loss = (self.config.loss_factor * recon + kld) / x.shape[0]
        opt = optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            sigma.clamp_(0.01, 1.0)
        return {"loss": float(loss.detach()), "reconstruction": float(recon.detach()) / x.shape[0], "kl": float(kld.detach()) / x.shape[0]}

    @torch.no_grad()
    def generate_spans(
        self,
        num_rows: int,
        category_conditions: Mapping[str, int] | None,
        generator: torch.Generator,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> np.ndarray:
        """``num_rows`` decoded samples of the prior in span form ``(num_rows, len(layout.spans))``.

        The conditional vector is set from ``category_conditions`` (the rarest requested
        category when there are several; the caller rejects rows that miss the others), else
        a column uniformly and a category by the data's frequencies. Value spans are the tanh
        of the decoder's output plus its noise; each one-hot span is a draw from its softmax.
        The decoder's matrix products run in ``dtype``.
        """
        bare = self.unwrapped("decoder")
        sigma = bare.sigma.float()
        spans = self.layout.spans
        emb = self.config.embedding_dim
        num_softmax = sum(s.activation != "tanh" for s in spans)
        out = np.empty((len(spans), num_rows), dtype=np.float32)
        with self._inference.evaluating("decoder", bare, dtype) as dec:
            for start in range(0, num_rows, GENERATION_CHUNK_ROWS):
                n = min(GENERATION_CHUNK_ROWS, num_rows - start)
                z = torch.randn(n, emb, generator=generator, device="cpu")
                inputs = torch.zeros(n, emb + self.cond.dim)
                inputs[:, :emb] = z
                positions = self.cond.draw_for_generation(n, category_conditions, generator)
                if positions is not None:
                    inputs[torch.arange(n), emb + torch.from_numpy(positions)] = 1.0
                rec = dec(inputs.to(self.device).to(dtype)).float()
                noise = torch.randn(rec.shape, generator=generator, device="cpu").to(self.device)
                u = torch.rand(num_softmax, n, 1, generator=generator, device="cpu").to(self.device)
                chunk = torch.empty(len(spans), n, dtype=torch.float32, device=rec.device)
                k = 0
                for j, span in enumerate(spans):
                    if span.activation == "tanh":
                        c = span.start
                        chunk[j] = torch.tanh(rec[:, c] + noise[:, c] * sigma[c])
                        continue
                    # One category drawn from the softmax by the inverse CDF (unnormalised: the uniform is scaled).
                    block = rec[:, span.start : span.stop]
                    cdf = (block - block.amax(dim=1, keepdim=True)).exp().cumsum(dim=1)
                    chunk[j] = (cdf < u[k] * cdf[:, -1:]).sum(dim=1).clamp(max=span.width - 1)
                    k += 1
                out[:, start : start + n] = chunk.cpu().numpy()
        return out.T

    # ---------------------------------------------------------------- state
    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        first = "encoder.body.0.weight" if len(self.unwrapped("encoder").body) else "encoder.mu.weight"
        expected = self.layout.dim + self.cond.dim
        if first in tensors and tensors[first].shape[1] != expected:
            raise ArtifactError(
                f"This TVAE was saved by an older version whose networks had no conditional input (encoder input "
                f"width {tensors[first].shape[1]}, now {expected}): it cannot be loaded. Train it again."
            )
        super().load_state_tensors(tensors)

    def extra_state(self) -> dict[str, Any]:
        return {"category_frequencies": [f.tolist() for f in self.cond.frequencies]}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        if "category_frequencies" in state:
            self.cond.frequencies = [np.asarray(f, dtype=np.float64) for f in state["category_frequencies"]]
