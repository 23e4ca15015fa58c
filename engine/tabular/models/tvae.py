"""TVAE (Xu et al. 2019): a variational autoencoder for tables."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.tabular.models.base import GENERATION_CHUNK_ROWS, TabularTorchModel
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


class TVAE(TabularTorchModel):
    """Tabular VAE on the model contract. It has no conditional input: conditions are met by rejection."""

    name: ClassVar[str] = "tvae"
    config_class: ClassVar[type] = TVAEConfig
    supports_native_conditions: ClassVar[bool] = False
    # One optimiser over encoder and decoder, stepped once per train_step: accumulation keeps its maths.
    supports_grad_accumulation: ClassVar[bool] = True

    def __init__(self, config: TVAEConfig, layout: EncodedLayout):
        super().__init__(config, layout)
        self.nets["encoder"] = Encoder(layout.dim, config.compress_dims, config.embedding_dim)
        self.nets["decoder"] = Decoder(config.embedding_dim, config.decompress_dims, layout.dim)
        self._inference = InferenceCopies()

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = list(self.nets["encoder"].parameters()) + list(self.nets["decoder"].parameters())
        return {"vae": torch.optim.Adam(params, lr=self.config.lr, weight_decay=self.config.l2scale, foreach=True)}

    def train_step(
        self, batch: torch.Tensor, optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        x = batch  # (B, data_dim)
        mu, logvar = self.nets["encoder"](x)
        eps = torch.randn(mu.shape, generator=generator, device="cpu").to(mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        rec = self.nets["decoder"](z)
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

        The decoder's matrix products run in ``dtype``.
        """
        if category_conditions:
            raise NotImplementedError("TVAE has no conditional input; conditions are met by rejection.")
        bare = self.unwrapped("decoder")
        sigma = bare.sigma.float()
        spans = self.layout.spans
        out = np.empty((len(spans), num_rows), dtype=np.float32)
        with self._inference.evaluating("decoder", bare, dtype) as dec:
            for start in range(0, num_rows, GENERATION_CHUNK_ROWS):
                n = min(GENERATION_CHUNK_ROWS, num_rows - start)
                z = torch.randn(n, self.config.embedding_dim, generator=generator, device="cpu").to(self.device)
                rec = dec(z.to(dtype)).float()
                noise = torch.randn(rec.shape, generator=generator, device="cpu").to(self.device)
                chunk = torch.empty(len(spans), n, dtype=torch.float32, device=rec.device)
                for j, span in enumerate(spans):
                    if span.activation == "tanh":
                        c = span.start
                        chunk[j] = torch.tanh(rec[:, c] + noise[:, c] * sigma[c])
                    else:
                        chunk[j] = rec[:, span.start : span.stop].argmax(dim=1)
                out[:, start : start + n] = chunk.cpu().numpy()
        return out.T
