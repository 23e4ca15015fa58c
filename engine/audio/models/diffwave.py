"""A small DiffWave (Kong et al. 2021): a denoising diffusion model on raw waveforms, unconditional or by class.

The network is DiffWave's non-causal WaveNet: a stack of residual layers,
each a dilated convolution (dilations cycling 1, 2, 4, ...) whose output is
gated (``tanh * sigmoid``) and split into a residual and a skip path; the
diffusion step enters every layer as a projection of its sinusoidal
embedding, and so does the class (a learned embedding added to the step's).
It predicts the noise that was added, trained with the plain DDPM loss (the
mean squared error of that prediction, Ho et al. 2020) on DiffWave's short
schedule (50 steps, betas linear from 1e-4 to 0.05), and samples with the
ancestral DDPM sampler over the same steps. Without a mel spectrogram to
condition on it is DiffWave's unconditional generator, here made class-conditional.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.audio.transforms import AudioLayout
from engine.core.contract import TorchSynthModel
from engine.core.params import Float, Int, ModelConfig, param


@dataclass
class DiffWaveConfig(ModelConfig):
    """Hyperparameters of the small DiffWave (the paper's base model: 64 channels, 30 layers, cycle 10)."""

    residual_channels: int = param(32, Int(min=1), "channels of every residual layer")
    layers: int = param(12, Int(min=1), "residual layers")
    dilation_cycle: int = param(6, Int(min=1, max=16), "dilations 1, 2, 4, ... restart every this many layers")
    timesteps: int = param(50, Int(min=2), "diffusion steps, in training and sampling")
    beta_start: float = param(1e-4, Float(gt=0, lt=1), "noise variance of the first step")
    beta_end: float = param(0.05, Float(gt=0, lt=1), "noise variance of the last step")
    lr: float = param(2e-4, Float(gt=0), "Adam learning rate")


def _step_embedding(steps: torch.Tensor, dim: int = 128) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of integer diffusion steps ``(B,)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=steps.device) / half)
    angles = steps.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResidualLayer(nn.Module):
    def __init__(self, channels: int, dilation: int, embed_dim: int):
        super().__init__()
        self.dilated = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.condition = nn.Linear(embed_dim, channels)
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.dilated(x + self.condition(embedding)[:, :, None])  # (B, 2C, T)
        gate, filt = h.chunk(2, dim=1)
        residual, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWaveNet(nn.Module):
    """Noisy waveform ``(B, T)``, step ``(B,)`` (and class ``(B,)``) -> predicted noise ``(B, T)``."""

    def __init__(self, config: DiffWaveConfig, num_classes: int, embed_dim: int = 256):
        super().__init__()
        c = config.residual_channels
        self.input = nn.Conv1d(1, c, 1)
        self.step = nn.Sequential(nn.Linear(128, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim), nn.SiLU())
        self.label = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.layers = nn.ModuleList(
            ResidualLayer(c, 2 ** (i % config.dilation_cycle), embed_dim) for i in range(config.layers)
        )
        self.skip = nn.Conv1d(c, c, 1)
        self.output = nn.Conv1d(c, 1, 1)
        nn.init.zeros_(self.output.weight)  # the untrained net predicts no noise, as DiffWave initialises it
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor, steps: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(self.input(x[:, None, :]))  # (B, C, T)
        embedding = self.step(_step_embedding(steps))
        if self.label is not None:
            embedding = embedding + self.label(labels)
        skips = 0
        for layer in self.layers:
            h, skip = layer(h, embedding)
            skips = skips + skip
        h = F.relu(self.skip(skips / math.sqrt(len(self.layers))))
        return self.output(h)[:, 0]  # (B, T)


class DiffWaveModel(TorchSynthModel):
    """The small DiffWave on the model contract: ``generate`` returns waveforms ``(N, T)`` float32 in [-1, 1]."""

    name: ClassVar[str] = "diffwave"
    config_class: ClassVar[type] = DiffWaveConfig
    layout_class: ClassVar[type] = AudioLayout
    supports_native_conditions: ClassVar[bool] = True
    supports_grad_accumulation: ClassVar[bool] = True  # one mean loss, one optimiser

    def __init__(self, config: DiffWaveConfig, layout: AudioLayout):
        super().__init__(config, layout)
        self.nets["denoiser"] = DiffWaveNet(config, layout.num_classes)
        betas = torch.linspace(config.beta_start, config.beta_end, config.timesteps, dtype=torch.float64)
        self.betas = betas
        self.alpha_bars = torch.cumprod(1 - betas, dim=0)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"denoiser": torch.optim.Adam(self.nets["denoiser"].parameters(), lr=self.config.lr)}

    def _labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels.to(self.device) if self.layout.num_classes else None

    def train_step(self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
                   generator: torch.Generator) -> dict[str, float]:
        x0, labels = batch["audio"], batch["label"]  # (B, T), (B,)
        n = len(x0)
        steps = torch.randint(0, self.config.timesteps, (n,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        abar = self.alpha_bars[steps].float().to(x0.device)[:, None]
        noisy = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        loss = F.mse_loss(self.nets["denoiser"](noisy, steps.to(x0.device), self._labels(labels)), noise)
        opt = optimizers["denoiser"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def generate(self, num_rows: int, conditions: Any, generator: torch.Generator, *, batch_size: int = 64) -> np.ndarray:
        """``num_rows`` waveforms by ancestral sampling; ``conditions`` is None or one class index per clip."""
        net = self.unwrapped("denoiser").eval()
        if self.layout.num_classes and conditions is None:
            raise ValueError("A conditional DiffWave needs one class index per clip.")
        codes = None if not self.layout.num_classes else torch.as_tensor(np.asarray(conditions), dtype=torch.long)
        t_len = self.layout.num_samples
        # Every random draw covers all clips at once: the clips do not depend on how the network's work is batched.
        x = torch.randn(num_rows, t_len, generator=generator)
        betas, abars = self.betas, self.alpha_bars
        for t in reversed(range(self.config.timesteps)):
            noise = torch.randn(num_rows, t_len, generator=generator) if t > 0 else None
            for start in range(0, num_rows, batch_size):
                part = slice(start, start + batch_size)
                xb = x[part].to(self.device)
                y = None if codes is None else codes[part].to(self.device)
                eps = net(xb, torch.full((len(xb),), t, device=self.device, dtype=torch.long), y).float()
                mean = (xb - float(betas[t] / (1 - abars[t]).sqrt()) * eps) / float((1 - betas[t]).sqrt())
                if noise is not None:
                    sigma = float((betas[t] * (1 - abars[t - 1]) / (1 - abars[t])).sqrt())  # the posterior's deviation
                    mean = mean + sigma * noise[part].to(self.device)
                x[part] = mean.cpu()
        net.train()
        return x.clamp(-1, 1).numpy().astype(np.float32)
