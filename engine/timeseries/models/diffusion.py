"""A diffusion model of sequences, in the spirit of Diffusion-TS (Yuan & Qiao 2024): the time-series default.

A small transformer encoder denoises a whole sequence ``(T, C)`` at once. Like
Diffusion-TS it predicts the clean sequence ``x0`` (not the noise), which suits
short, smooth series. The loss over the real (unpadded) steps is the L1 or L2 error of
``x0`` plus, as in Diffusion-TS, the same error on the real and imaginary parts of the
sequences' Fourier transforms along time (``fourier_weight`` of it; 0 turns it off),
which helps with the periodic structure that a per-step loss captures poorly.
Sampling uses an exponential moving average of the denoiser's weights.
The diffusion step and the sequence's static attributes are embedded and added to
every position; padding steps are hidden from attention by a key padding mask and
stay at zero.

Sampling runs DDIM (Song et al. 2021) over ``sampling_steps`` evenly spaced steps of
the ``timesteps``-step cosine schedule (Nichol & Dhariwal 2021): deterministic steps
given the initial noise with ``sampling_eta = 0``, fresh noise at every step (ancestral,
as DDPM) with 1; all noise comes from the seeded generator.

Only the maths lives here; the training loop owns epochs, devices and DDP.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.contract import TorchSynthModel, iter_chunks
from engine.core.ema import ema_copy, ema_decay, update_ema
from engine.core.params import Choice, Float, Int, ModelConfig, OrNone, invalid_parameter, param
from engine.timeseries.transforms import SequenceLayout


@dataclass
class DiffusionTSConfig(ModelConfig):
    """Hyperparameters of the sequence diffusion model (rules and help: ``describe_parameters(DiffusionTSConfig)``)."""

    d_model: int = param(64, Int(min=4), "width of the transformer")
    num_layers: int = param(2, Int(min=1), "transformer encoder layers")
    num_heads: int = param(4, Int(min=1), "attention heads; must divide d_model")
    timesteps: int = param(200, Int(min=2), "forward-process steps of the cosine schedule")
    sampling_steps: int = param(25, Int(min=1), "DDIM steps when sampling (at most timesteps)")
    dropout: float = param(0.0, Float(ge=0, lt=1), "dropout in the transformer")
    lr: float = param(1e-3, Float(gt=0), "AdamW learning rate")
    weight_decay: float = param(0.0, Float(ge=0), "AdamW weight decay")
    max_grad_norm: float = param(1.0, Float(ge=0), "gradient-norm clip; 0 turns it off")
    sample_batch_size: int = param(256, Int(min=1), "sequences denoised together while generating")
    sampling_eta: float = param(0.0, Float(ge=0, le=1), "DDIM's eta: 0 deterministic steps, 1 ancestral (DDPM-like) noise")
    loss: str = param("l2", Choice("l1", "l2"), "error on the predicted clean sequence (Diffusion-TS: l1)")
    fourier_weight: float | None = param(
        None, OrNone(Float(ge=0)),
        "weight of the same error on the Fourier transform along time; None: sqrt(steps) / 5, as Diffusion-TS; 0: off")
    ema_decay: float = param(0.995, Float(ge=0, lt=1), "decay of the EMA weights used for sampling (ramped up at first)")

    def check_combination(self) -> None:
        if self.d_model % self.num_heads:
            raise invalid_parameter(self.owner(), "num_heads", f"a divisor of d_model={self.d_model}", self.num_heads)
        if self.sampling_steps > self.timesteps:
            raise invalid_parameter(self.owner(), "sampling_steps", f"at most timesteps={self.timesteps}", self.sampling_steps)


def cosine_alpha_bars(timesteps: int) -> torch.Tensor:
    """Cumulative signal fractions ``alpha_bar_t`` for t = 1..T of the cosine schedule (clipped away from 0)."""
    s = 0.008
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0).float()


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer diffusion steps ``(B,)`` -> ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half, 1))
    angles = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


def sequence_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str, fourier_weight: float) -> torch.Tensor:
    """Mean L1/L2 error over the real steps, plus ``fourier_weight`` times the error of the time-axis FFTs.

    The FFT (``norm="forward"``: coefficients are means, so the term's size does not grow
    with the length) is taken of the sequences with their padding at zero, so a padded
    step contributes nothing of its own; its error is averaged over all coefficients.
    """
    err = (lambda a, b: (a - b).abs()) if kind == "l1" else (lambda a, b: (a - b) ** 2)  # noqa: E731
    m = mask[:, :, None].expand_as(target)
    loss = (err(pred, target) * m).sum() / m.sum().clamp(min=1)
    if fourier_weight > 0:
        fp, ft = torch.fft.fft(pred * m, dim=1, norm="forward"), torch.fft.fft(target * m, dim=1, norm="forward")
        loss = loss + fourier_weight * (err(fp.real, ft.real) + err(fp.imag, ft.imag)).mean()
    return loss


class SequenceDenoiser(nn.Module):
    """Transformer encoder: noisy ``(B, T, C)``, step ``(B,)``, static ``(B, S)``, mask ``(B, T)`` -> clean ``(B, T, C)``."""

    def __init__(self, layout: SequenceLayout, config: DiffusionTSConfig):
        super().__init__()
        d = config.d_model
        self.d_model = d
        self.inp = nn.Linear(layout.channels, d)
        self.pos = nn.Parameter(torch.randn(1, layout.steps, d) * 0.02)
        self.step_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.static = nn.Linear(layout.static_dim, d) if layout.static_dim else None
        layer = nn.TransformerEncoderLayer(d, config.num_heads, 2 * d, config.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, layout.channels))

    def forward(self, x: torch.Tensor, t: torch.Tensor, static: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cond = self.step_mlp(step_embedding(t, self.d_model))  # (B, d)
        if self.static is not None:
            cond = cond + self.static(static)
        h = self.inp(x) + self.pos + cond[:, None, :]  # (B, T, d)
        h = self.encoder(h, src_key_padding_mask=mask < 0.5)
        return self.out(h) * mask[:, :, None]


class SequenceDiffusionModel(TorchSynthModel):
    """Diffusion over whole sequences with a transformer denoiser, conditioned on static attributes.

    Batches are dicts ``{"x": (B, T, C), "mask": (B, T), "static": (B, S)}``;
    :meth:`generate` takes ``conditions = {"static": (n, S), "mask": (n, T)}`` (the
    static values and lengths drawn by the front door).
    """

    name: ClassVar[str] = "diffusion_ts"
    config_class: ClassVar[type] = DiffusionTSConfig
    layout_class: ClassVar[type] = SequenceLayout
    supports_native_conditions: ClassVar[bool] = True

    def __init__(self, config: DiffusionTSConfig, layout: SequenceLayout):
        super().__init__(config, layout)
        self.nets["denoiser"] = SequenceDenoiser(layout, config)
        self.shadow_nets["ema_denoiser"] = ema_copy(self.nets["denoiser"])
        self.ema_updates = 0
        self.alpha_bars = cosine_alpha_bars(config.timesteps)
        fw = config.fourier_weight
        self.fourier_weight = math.sqrt(layout.steps) / 5 if fw is None else float(fw)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"denoiser": torch.optim.AdamW(self.nets["denoiser"].parameters(), lr=self.config.lr,
                                              weight_decay=self.config.weight_decay)}

    def train_step(self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
                   generator: torch.Generator) -> dict[str, float]:
        x0, mask, static = batch["x"], batch["mask"], batch["static"]
        b = x0.shape[0]
        t = torch.randint(0, self.config.timesteps, (b,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        ab = self.alpha_bars.to(x0.device)[t][:, None, None]
        xt = (ab.sqrt() * x0 + (1 - ab).sqrt() * noise) * mask[:, :, None]
        pred = self.nets["denoiser"](xt, t, static, mask)
        loss = sequence_loss(pred, x0, mask, self.config.loss, self.fourier_weight)
        opt = optimizers["denoiser"]
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        if self.config.max_grad_norm > 0:
            self.unscale_gradients(opt)
            torch.nn.utils.clip_grad_norm_(self.nets["denoiser"].parameters(), self.config.max_grad_norm)
        opt.step()
        update_ema(self.shadow_nets["ema_denoiser"], self.unwrapped("denoiser"),
                   ema_decay(self.config.ema_decay, self.ema_updates))
        self.ema_updates += 1
        return {"loss": float(loss.detach())}

    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": self.ema_updates}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.ema_updates = int(state.get("ema_updates", 0))

    @torch.no_grad()
    def generate(self, num_rows: int, conditions: Mapping[str, np.ndarray] | None, generator: torch.Generator, *,
                 sampling_steps: int | None = None, sampling_eta: float | None = None) -> np.ndarray:
        """``num_rows`` encoded sequences ``(n, T, C)``, zero on the padding given by ``conditions["mask"]``.

        ``sampling_steps`` and ``sampling_eta`` override the config's for this call: both act only
        while sampling, so a trained model can be sampled with other settings.
        """
        layout = self.layout
        given = {"sampling_steps": sampling_steps, "sampling_eta": sampling_eta}
        # The config's own rules check the overrides: the copy is validated as it is built.
        cfg = dataclasses.replace(self.config, **{k: v for k, v in given.items() if v is not None})
        cond = dict(conditions or {})
        mask_all = torch.as_tensor(cond.get("mask", np.ones((num_rows, layout.steps))), dtype=torch.float32)
        static_all = torch.as_tensor(cond.get("static", np.zeros((num_rows, layout.static_dim))), dtype=torch.float32)
        net = self.shadow_nets["ema_denoiser"].eval()
        device = self.device
        ab = self.alpha_bars.to(device)
        # Evenly spaced steps from T-1 down to 0.
        steps = torch.linspace(cfg.timesteps - 1, 0, cfg.sampling_steps).round().long().tolist()
        out, start = [], 0
        for size in iter_chunks(num_rows, cfg.sample_batch_size):
            mask = mask_all[start : start + size].to(device)
            static = static_all[start : start + size].to(device)
            start += size
            x = torch.randn((size, layout.steps, layout.channels), generator=generator).to(device) * mask[:, :, None]
            for i, t in enumerate(steps):
                tt = torch.full((size,), t, device=device, dtype=torch.long)
                x0 = net(x, tt, static, mask).clamp(-1.5, 1.5)
                a_t = ab[t]
                eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
                a_prev = ab[steps[i + 1]] if i + 1 < len(steps) else torch.tensor(1.0, device=device)
                # DDIM's sigma (Song et al. 2021, eq. 16): 0 with eta = 0; the ancestral step's noise with eta = 1.
                sigma = cfg.sampling_eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp(min=0).sqrt()
                x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
                if cfg.sampling_eta > 0 and i + 1 < len(steps):
                    x = x + sigma * torch.randn(x.shape, generator=generator).to(device)
                x = x * mask[:, :, None]
            out.append(x.cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32)
