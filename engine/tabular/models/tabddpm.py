"""TabDDPM-style diffusion for mixed-type tables (Kotelnikov et al. 2023), with masked categorical diffusion.

One shared time ``t`` in (0, 1] drives two forward processes on a row encoded by
``engine.tabular.transforms.diffusion_encoding`` (numeric columns quantile-normalised
to a standard normal, discrete columns as class indices):

- **numeric columns**: Gaussian diffusion with the cosine schedule,
  ``x_t = α_t x_0 + σ_t ε`` with ``α_t² = ᾱ(t)``, ``σ_t² = 1 - ᾱ(t)``, ``ᾱ(1) = 0``;
- **discrete columns**: masked (absorbing-state) diffusion, each slot replaced by
  a "mask" class of its own with probability ``t`` (Austin et al. 2021, D3PM
  absorbing; Sahoo et al. 2024). It is TabDDPM's multinomial diffusion with the
  uniform noise swapped for a mask: the reverse step only ever unmasks, so a
  category condition is met exactly by inpainting (the slot is never masked),
  and the posteriors are a closed form (``categorical_posterior``).

One MLP denoiser (TabDDPM's: input projection plus a sinusoidal time embedding,
SiLU layers) reads ``(x_t, masked classes, t)`` and predicts the numeric
*velocity* ``v = α_t ε - σ_t x_0`` and the logits of every discrete slot's clean
class. v-prediction rather than ε-prediction: the sampler takes 30-50 DDIM
steps whose first starts at pure noise (``α_1 = 0``), where ``x_0 = (x_t - σ ε̂)/α``
is undefined for ε-prediction, while ``x_0 = α x_t - σ v̂`` stays bounded at every
``t``; the v loss also weights all noise levels evenly (Salimans & Ho 2022).

Sampling is deterministic DDIM on the numeric part (η = 0) and, on the discrete part,
the exact reverse of the masking: from ``t`` to ``s < t`` a masked slot stays masked
with probability ``s/t`` and otherwise takes a class drawn from the predicted
distribution. Rows are generated from an exponential moving average of the weights.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.ema import ema_copy, ema_decay, update_ema
from engine.core.errors import InvalidConditionError
from engine.core.params import Dims, Float, Int, ModelConfig, param
from engine.core.precision import InferenceCopies
from engine.tabular.models.base import GENERATION_CHUNK_ROWS, TabularTorchModel
from engine.tabular.transforms.diffusion_encoding import Z_MAX, DiffusionEncoder, DiffusionLayout

COSINE_OFFSET = 0.008  # the cosine schedule's s (Nichol & Dhariwal 2021): keeps α_t from jumping near t = 0
T_MIN = 1e-3  # training times are drawn from [T_MIN, 1]


@dataclass
class TabDDPMConfig(ModelConfig):
    """Hyperparameters of the tabular diffusion model."""

    hidden_dims: tuple[int, ...] = param((256, 256, 256), Dims(), "widths of the denoiser's layers")
    time_embedding_dim: int = param(128, Int(min=2), "size of the sinusoidal time embedding")
    category_embedding_dim: int = param(16, Int(min=1), "size of each discrete slot's class embedding")
    dropout: float = param(0.0, Float(ge=0, lt=1), "dropout between the denoiser's layers")
    lr: float = param(1e-3, Float(gt=0), "AdamW learning rate")
    weight_decay: float = param(1e-5, Float(ge=0), "AdamW weight decay")
    sampling_steps: int = param(40, Int(min=1), "DDIM steps per generated batch")
    ema_decay: float = param(0.999, Float(ge=0, lt=1), "decay of the weight average rows are generated from (0: none)")


# ----------------------------------------------------------------------------- the processes
def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(α_t, σ_t)`` of the cosine schedule at times ``t`` in [0, 1]: ``α_0 = 1``, ``α_1 = 0``, ``α² + σ² = 1``."""
    s = COSINE_OFFSET
    angle = (t + s) / (1 + s) * (math.pi / 2)
    alpha_bar = (torch.cos(angle) / math.cos(s / (1 + s) * math.pi / 2)) ** 2
    alpha_bar = alpha_bar.clamp(0.0, 1.0)
    alpha_bar = torch.where(t >= 1.0, torch.zeros_like(alpha_bar), alpha_bar)
    return alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()


def noise_numeric(x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward process on numeric columns: ``(x_t, v)`` for clean ``x0 (B, D)``, times ``t (B,)`` and noise ``eps``."""
    a, s = alpha_sigma(t)
    a, s = a[:, None], s[:, None]
    return a * x0 + s * eps, a * eps - s * x0


def clean_from_velocity(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_0, ε)`` implied by ``x_t`` and a velocity ``v`` at times ``t``: the inverse of :func:`noise_numeric`."""
    a, s = alpha_sigma(t)
    a, s = a[:, None], s[:, None]
    return a * x_t - s * v, s * x_t + a * v


def mask_classes(classes: torch.Tensor, t: torch.Tensor, u: torch.Tensor, mask_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward process on discrete slots: each class of ``classes (B, C)`` becomes its slot's mask id
    with probability ``t``; ``u (B, C)`` are the uniforms that decide. Returns ``(masked classes, mask)``."""
    mask = u < t[:, None]
    return torch.where(mask, mask_ids[None, :].expand_as(classes), classes), mask


def categorical_posterior(probs: torch.Tensor, t: float, s: float) -> torch.Tensor:
    """The reverse step of a masked slot from time ``t`` to ``s < t``: ``(B, K + 1)`` probabilities.

    ``probs (B, K)`` is the predicted distribution of the clean class; the slot takes class
    ``k`` with probability ``(t - s)/t · probs_k`` and stays masked (the last entry) with
    probability ``s/t``. Each row sums to one.
    """
    keep = s / t
    return torch.cat([probs * (1.0 - keep), torch.full_like(probs[:, :1], keep)], dim=1)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of times ``t (B,)`` in [0, 1] (scaled to [0, 1000] as DDPM's integer steps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim - 2 * half))


# ----------------------------------------------------------------------------- the denoiser
class Denoiser(nn.Module):
    """MLP over ``[x_t, class embeddings]`` plus a time embedding; outputs ``[v̂ (D), logits (ΣK)]``."""

    def __init__(self, num_numeric: int, class_counts: tuple[int, ...], config: TabDDPMConfig):
        super().__init__()
        self.time_dim = config.time_embedding_dim
        counts = torch.tensor(class_counts, dtype=torch.long)
        # One table for every slot's classes plus its mask class: slot j's rows start at offsets[j].
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts + 1, 0)[:-1]]) if len(class_counts) else counts
        self.register_buffer("offsets", offsets, persistent=False)
        self.embed = nn.Embedding(int((counts + 1).sum()) if len(class_counts) else 1, config.category_embedding_dim)
        width = config.hidden_dims[0]
        self.proj = nn.Linear(num_numeric + len(class_counts) * config.category_embedding_dim, width)
        self.time = nn.Sequential(nn.Linear(self.time_dim, width), nn.SiLU(), nn.Linear(width, width))
        layers: list[nn.Module] = []
        for d in config.hidden_dims:
            layers += [nn.Linear(width, d), nn.SiLU(), nn.Dropout(config.dropout)]
            width = d
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, num_numeric + int(counts.sum()))

    def forward(self, x_num: torch.Tensor, classes: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dtype = self.proj.weight.dtype  # a bfloat16 copy for sampling takes float32 inputs too
        parts = [x_num.to(dtype)]
        if classes.shape[1]:
            parts.append(self.embed(classes + self.offsets[None, :]).flatten(1))
        h = self.proj(torch.cat(parts, dim=1)) + self.time(timestep_embedding(t, self.time_dim).to(dtype))
        return self.out(self.body(F.silu(h)))


class TabDDPM(TabularTorchModel):
    """Gaussian + masked diffusion on the model contract (see the module docstring)."""

    name: ClassVar[str] = "tabddpm"
    config_class: ClassVar[type] = TabDDPMConfig
    layout_class: ClassVar[type] = DiffusionLayout
    encoder_class: ClassVar[type] = DiffusionEncoder  # the front door encodes the table with it
    supports_native_conditions: ClassVar[bool] = True
    supports_grad_accumulation: ClassVar[bool] = True

    def __init__(self, config: TabDDPMConfig, layout: DiffusionLayout):
        super().__init__(config, layout)
        self.num_numeric = layout.num_numeric
        self.class_counts = layout.class_counts
        self.nets["denoiser"] = Denoiser(self.num_numeric, self.class_counts, config)
        if config.ema_decay > 0:
            self.shadow_nets["denoiser_ema"] = ema_copy(self.nets["denoiser"])
        self.ema_updates = 0
        self._inference = InferenceCopies()
        self.mask_ids = torch.tensor(self.class_counts, dtype=torch.long)  # slot j's mask class is its K_j
        bounds = np.cumsum([0, *self.class_counts])
        self._logit_slices = [(self.num_numeric + int(a), self.num_numeric + int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"denoiser": torch.optim.AdamW(self.nets["denoiser"].parameters(), lr=c.lr, weight_decay=c.weight_decay, foreach=True)}

    def loss(self, batch: torch.Tensor, generator: torch.Generator, net: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of a batch of encoded rows ``(B, dim)``: v-MSE plus masked cross-entropy."""
        net = self.nets["denoiser"] if net is None else net
        n, dev = batch.shape[0], batch.device
        x0 = batch[:, : self.num_numeric]
        classes = batch[:, self.num_numeric :].round().long()
        t = (T_MIN + (1 - T_MIN) * torch.rand(n, generator=generator)).to(dev)
        eps = torch.randn(x0.shape, generator=generator).to(dev)
        u = torch.rand(classes.shape, generator=generator).to(dev)
        x_t, v = noise_numeric(x0, t, eps)
        masked, mask = mask_classes(classes, t, u, self.mask_ids.to(dev))
        out = net(x_t, masked, t)
        loss_num = F.mse_loss(out[:, : self.num_numeric], v) if self.num_numeric else out.new_zeros(())
        loss_cat = out.new_zeros(())
        if self.class_counts:
            ce = torch.stack(
                [F.cross_entropy(out[:, a:b], classes[:, j], reduction="none") for j, (a, b) in enumerate(self._logit_slices)], dim=1
            )  # (B, C)
            loss_cat = (ce * mask).sum() / mask.sum().clamp_min(1)
        return loss_num + loss_cat, {"loss_numeric": float(loss_num.detach()), "loss_categorical": float(loss_cat.detach())}

    def train_step(
        self, batch: torch.Tensor, optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        loss, parts = self.loss(batch, generator)
        opt = optimizers["denoiser"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if self.accumulation.last and "denoiser_ema" in self.shadow_nets:
            update_ema(self.shadow_nets["denoiser_ema"], self.unwrapped("denoiser"), ema_decay(self.config.ema_decay, self.ema_updates))
            self.ema_updates += 1
        return {"loss": float(loss.detach()), **parts}

    # ---------------------------------------------------------------- generation
    def _sampling_net(self) -> nn.Module:
        return self.shadow_nets["denoiser_ema"] if "denoiser_ema" in self.shadow_nets else self.unwrapped("denoiser")

    def _fixed_classes(self, conditions: Mapping[str, int] | None) -> dict[int, int]:
        fixed: dict[int, int] = {}
        for column, code in (conditions or {}).items():
            try:
                j = self.layout.discrete_index(column)
            except KeyError:
                valid = ", ".join(repr(s.column) for s in self.layout.discrete if s.role == "category")
                raise InvalidConditionError(
                    f"TabDDPM cannot condition on column {column!r} by category: its discrete columns are {valid or 'none'}."
                ) from None
            if not 0 <= int(code) < self.class_counts[j]:
                raise InvalidConditionError(f"Category index {code!r} is outside column {column!r}'s {self.class_counts[j]} classes.")
            fixed[j] = int(code)
        return fixed

    @torch.no_grad()
    def generate_spans(
        self, num_rows: int, conditions: Mapping[str, int] | None, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> np.ndarray:
        """``num_rows`` rows in span form ``(num_rows, layout.dim)`` by ``sampling_steps`` reverse steps.

        ``conditions`` maps a categorical column to a class index: that slot is set from the
        start and never masked (inpainting), so every row meets it and the other columns
        are drawn given it. The denoiser's matrix products run in ``dtype``; the updates of
        the numeric values and the class draws in float32.
        """
        fixed = self._fixed_classes(conditions)
        with self._inference.evaluating("denoiser", self._sampling_net(), dtype) as net:
            out = np.empty((num_rows, self.layout.dim), dtype=np.float32)
            for start in range(0, num_rows, GENERATION_CHUNK_ROWS):
                n = min(GENERATION_CHUNK_ROWS, num_rows - start)
                out[start : start + n] = self._reverse(net, n, fixed, generator).cpu().numpy()
        return out

    def _reverse(self, net: nn.Module, n: int, fixed: Mapping[int, int], generator: torch.Generator) -> torch.Tensor:
        dev = self.device
        steps = self.config.sampling_steps
        times = torch.linspace(1.0, 0.0, steps + 1)
        x = torch.randn(n, self.num_numeric, generator=generator).to(dev)
        classes = self.mask_ids.to(dev)[None, :].repeat(n, 1)
        for j, code in fixed.items():
            classes[:, j] = code
        for i in range(steps):
            t, s = float(times[i]), float(times[i + 1])
            tt = torch.full((n,), t, device=dev)
            pred = net(x, classes, tt).float()
            if self.num_numeric:
                x0, eps = clean_from_velocity(x, pred[:, : self.num_numeric], tt)
                x0 = x0.clamp(-Z_MAX, Z_MAX)
                a_t, sig_t = alpha_sigma(tt)
                if t < 1.0:
                    eps = (x - a_t[:, None] * x0) / sig_t[:, None]  # consistent with the clamped x0
                a_s, sig_s = alpha_sigma(torch.full((n,), s, device=dev))
                x = a_s[:, None] * x0 + sig_s[:, None] * eps
            if self.class_counts:
                u = torch.rand(len(self.class_counts), n, 1, generator=generator).to(dev)  # one uniform per slot and row
                for j, (a, b) in enumerate(self._logit_slices):
                    if j in fixed:
                        continue
                    masked = classes[:, j] == self.mask_ids[j]
                    if not masked.any():
                        continue
                    post = categorical_posterior(F.softmax(pred[:, a:b], dim=1), t, s)  # (n, K + 1)
                    # The last step (s = 0) unmasks every slot: rounding must not leave one masked.
                    top = post.shape[1] - (2 if s == 0.0 else 1)
                    drawn = torch.searchsorted(post.cumsum(1), u[j]).squeeze(1).clamp_max(top)
                    # Index K means "stay masked", which is the mask id K itself.
                    classes[:, j] = torch.where(masked, drawn, classes[:, j])
        return torch.cat([x, classes.float()], dim=1)

    # ----------------------------------------------------------------------- state
    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": self.ema_updates}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.ema_updates = int(state.get("ema_updates", 0))
