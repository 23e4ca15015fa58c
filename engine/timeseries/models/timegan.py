"""TimeGAN (Yoon, Jarrett & van der Schaar, NeurIPS 2019), conditioned on static attributes.

Five recurrent networks share a latent space of ``hidden_dim`` per step:

- embedder ``e``: real sequence -> latent ``h``; recovery ``r``: latent -> sequence;
- generator ``g``: noise -> latent ``e_hat``; supervisor ``s``: latent at ``t`` -> latent at ``t + 1``;
- discriminator ``d``: latent sequence -> real/fake logit per step.

Training has the paper's three phases, run by the engine's loop as :class:`Phase`\\ s:

1. ``"embedding"``: the autoencoder ``r(e(x))`` learns to reconstruct (``10 sqrt(MSE)``);
2. ``"supervised"``: ``s`` learns the one-step latent dynamics of real embeddings;
3. ``"joint"``: the generator (adversarial losses on ``s(g(z))`` and ``g(z)``,
   ``100 sqrt`` of the supervised loss, the moment loss on the recovered sequences),
   the embedder (reconstruction plus ``0.1`` of the supervised loss) and the
   discriminator (only when its loss exceeds 0.15, as in the reference code) in turn.

Differences from the paper, on purpose: the data are scaled to [-1, 1] so the
recovery ends in ``tanh`` (not a sigmoid), static attributes are appended to every
network's input, losses on sequences of different lengths are masked to the real
steps, and the generator takes ``generator_steps`` steps per discriminator step (the
reference code takes two; the default here, one).

``dynamics_weight`` (0 by default, as the reference code) adds the supervisor's one-step
error on the generated latents to the generator's loss. The reference fits the
supervisor to real latents only, so nothing but the discriminator (on latents) asks
generated sequences to move like real ones; on the 28-channel Energy set their recovered
windows jumped about 16 times as much from step to step as real ones.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch import nn

from engine.core.contract import Phase, TorchSynthModel, iter_chunks
from engine.core.params import Float, Int, ModelConfig, OrNone, invalid_parameter, param
from engine.timeseries.transforms import SequenceLayout


@dataclass
class TimeGANConfig(ModelConfig):
    """Hyperparameters of TimeGAN (rules and help: ``describe_parameters(TimeGANConfig)``)."""

    hidden_dim: int = param(24, Int(min=1), "latent width per step (the paper: 24)")
    num_layers: int = param(3, Int(min=1), "GRU layers of every network (the paper: 3)")
    noise_dim: int | None = param(None, OrNone(Int(min=1)), "noise width per step; None: the number of channels")
    lr: float = param(1e-3, Float(gt=0), "Adam learning rate of every network")
    gamma: float = param(1.0, Float(ge=0), "weight of the adversarial loss on the unsupervised latents g(z)")
    embedding_epochs: int | None = param(None, OrNone(Int(min=1)), "epochs of the embedding phase; None: the run's epochs")
    supervised_epochs: int | None = param(None, OrNone(Int(min=1)), "epochs of the supervised phase; None: the run's epochs")
    embedding_steps: int | None = param(
        None, OrNone(Int(min=1)), "optimisation steps of the embedding phase instead of epochs (the reference: 10000)")
    supervised_steps: int | None = param(
        None, OrNone(Int(min=1)), "optimisation steps of the supervised phase instead of epochs (the reference: 10000)")
    generator_steps: int = param(1, Int(min=1), "generator and embedder updates per discriminator update in the joint phase "
                                 "(the reference: 2)")
    moment_weight: float = param(100.0, Float(ge=0), "weight of the moment loss (mean and standard deviation per time step and channel)")
    supervised_weight: float = param(100.0, Float(ge=0), "weight of sqrt(supervised loss) in the generator's loss")
    dynamics_weight: float = param(
        0.0, Float(ge=0), "weight of sqrt of the supervisor's one-step error on the generated latents s(g(z)) in the "
        "generator's loss (0, the reference code: the supervisor is only fitted to real latents)")
    sample_batch_size: int = param(512, Int(min=1), "sequences generated together")

    def check_combination(self) -> None:
        for phase in ("embedding", "supervised"):
            if getattr(self, f"{phase}_epochs") is not None and getattr(self, f"{phase}_steps") is not None:
                raise invalid_parameter(self.owner(), f"{phase}_steps", f"None when {phase}_epochs is set",
                                        getattr(self, f"{phase}_steps"))


class RecurrentBlock(nn.Module):
    """A GRU stack and a linear read-out per step, with an optional output activation."""

    def __init__(self, inputs: int, hidden: int, outputs: int, layers: int, activation: str | None):
        super().__init__()
        self.rnn = nn.GRU(inputs, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, outputs)
        self.activation = activation

    def forward(self, x: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        if static is not None and static.shape[1]:
            x = torch.cat([x, static[:, None, :].expand(-1, x.shape[1], -1)], dim=2)
        y = self.head(self.rnn(x)[0])
        if self.activation == "sigmoid":
            return torch.sigmoid(y)
        if self.activation == "tanh":
            return torch.tanh(y)
        return y


def _masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask[:, :, None].expand_as(a)
    return ((a - b) ** 2 * m).sum() / m.sum().clamp(min=1)


def _moment_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's moment loss: |std| and |mean| gaps per time step and channel, across the batch.

    Per step, not pooled over time: pooled moments are matched by one trajectory shared by
    every sequence that sweeps the channel's range (the generator then ignores its noise,
    a collapse seen here); per-step moments need spread across sequences at every step.
    """
    m = mask[:, :, None]
    count = m.sum(0)  # (T, 1): real sequences at each step
    steps = (count > 0).float().expand(-1, real.shape[2])
    count = count.clamp(min=1)
    mean_r, mean_f = (real * m).sum(0) / count, (fake * m).sum(0) / count
    var_r = ((real - mean_r) ** 2 * m).sum(0) / count
    var_f = ((fake - mean_f) ** 2 * m).sum(0) / count
    gap = (torch.sqrt(var_f + 1e-6) - torch.sqrt(var_r + 1e-6)).abs() + (mean_f - mean_r).abs()
    return (gap * steps).sum() / steps.sum().clamp(min=1)


class TimeGANModel(TorchSynthModel):
    """TimeGAN on the engine's contract: three phases, five GRU networks.

    Batches are dicts ``{"x": (B, T, C), "mask": (B, T), "static": (B, S)}``;
    :meth:`generate` takes ``conditions = {"static": (n, S), "mask": (n, T)}``.
    """

    name: ClassVar[str] = "timegan"
    config_class: ClassVar[type] = TimeGANConfig
    layout_class: ClassVar[type] = SequenceLayout
    supports_native_conditions: ClassVar[bool] = True

    def __init__(self, config: TimeGANConfig, layout: SequenceLayout):
        super().__init__(config, layout)
        c, s, h, n = layout.channels, layout.static_dim, config.hidden_dim, config.num_layers
        self.noise_dim = config.noise_dim or c
        self.nets["embedder"] = RecurrentBlock(c + s, h, h, n, "sigmoid")
        self.nets["recovery"] = RecurrentBlock(h, h, c, n, "tanh")
        self.nets["generator"] = RecurrentBlock(self.noise_dim + s, h, h, n, "sigmoid")
        self.nets["supervisor"] = RecurrentBlock(h + s, h, h, max(n - 1, 1), "sigmoid")
        self.nets["discriminator"] = RecurrentBlock(h + s, h, 1, n, None)

    def phases(self) -> list[Phase]:
        cfg = self.config
        return [Phase("embedding", epochs=cfg.embedding_epochs, steps=cfg.embedding_steps),
                Phase("supervised", epochs=cfg.supervised_epochs, steps=cfg.supervised_steps), Phase("joint")]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        params = lambda *keys: [p for k in keys for p in self.nets[k].parameters()]  # noqa: E731
        return {
            "autoencoder": torch.optim.Adam(params("embedder", "recovery"), lr=lr),
            "supervisor": torch.optim.Adam(params("supervisor"), lr=lr),
            "generator": torch.optim.Adam(params("generator", "supervisor"), lr=lr),
            "embedder": torch.optim.Adam(params("embedder", "recovery"), lr=lr),
            "discriminator": torch.optim.Adam(params("discriminator"), lr=lr),
        }

    def _noise(self, b: int, steps: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.rand((b, steps, self.noise_dim), generator=generator).to(device)

    def train_step(self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
                   generator: torch.Generator) -> dict[str, float]:
        x, mask, static = batch["x"], batch["mask"], batch["static"]
        if self.phase == "embedding":
            return self._embedding_step(x, mask, static, optimizers["autoencoder"])
        if self.phase == "supervised":
            return self._supervised_step(x, mask, static, optimizers["supervisor"])
        return self._joint_step(x, mask, static, optimizers, generator)

    def _embedding_step(self, x, mask, static, opt) -> dict[str, float]:
        h = self.nets["embedder"](x, static)
        x_tilde = self.nets["recovery"](h)
        loss = 10 * torch.sqrt(_masked_mse(x_tilde, x, mask))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss_reconstruction": float(loss.detach())}

    def _supervised_loss(self, h: torch.Tensor, h_sup: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # s(h)_t predicts h_{t+1}: compare on steps whose successor is real.
        return _masked_mse(h_sup[:, :-1], h[:, 1:], mask[:, 1:])

    def _dynamics_loss(self, h_hat: torch.Tensor, static: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """How far generated latents stray from the one-step dynamics the supervisor learnt on real ones.

        The supervisor is applied with its weights detached: the gradient moves the generated
        latents towards real dynamics, never the supervisor towards the generated ones.
        """
        sup = self.unwrapped("supervisor")
        frozen = {k: v.detach() for k, v in sup.named_parameters()}
        return self._supervised_loss(h_hat, functional_call(sup, frozen, (h_hat, static)), mask)

    def _supervised_step(self, x, mask, static, opt) -> dict[str, float]:
        with torch.no_grad():
            h = self.unwrapped("embedder")(x, static)
        loss = self._supervised_loss(h, self.nets["supervisor"](h, static), mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss_supervised": float(loss.detach())}

    def _joint_step(self, x, mask, static, optimizers, generator) -> dict[str, float]:
        b, steps = x.shape[:2]
        m3 = mask[:, :, None]
        bare = {k: self.unwrapped(k) for k in self.nets}
        for _ in range(self.config.generator_steps):  # the reference code takes two per discriminator step
            # The embedder's latents of the real batch, once for both updates: the generator's step
            # leaves the embedder's weights as they are, so its targets are these latents, detached.
            h = self.nets["embedder"](x, static)
            h_real = h.detach()

            # Generator (with the supervisor): fool the discriminator, follow the real dynamics, match moments.
            z = self._noise(b, steps, generator, x.device)
            e_hat = self.nets["generator"](z, static) * m3
            h_hat = self.nets["supervisor"](e_hat, static) * m3
            x_hat = bare["recovery"](h_hat)
            # One pass of the discriminator over both kinds of fakes: a GRU's cost on a CPU is
            # mostly its sequential steps, so a batch twice as large costs little more than one.
            y_fake, y_fake_e = bare["discriminator"](torch.cat([h_hat, e_hat]), torch.cat([static, static])).split(b)
            ones = torch.ones_like(y_fake)
            loss_adv = F.binary_cross_entropy_with_logits(y_fake, ones, weight=m3) + self.config.gamma * (
                F.binary_cross_entropy_with_logits(y_fake_e, ones, weight=m3)
            )
            loss_sup = self._supervised_loss(h_real, bare["supervisor"](h_real, static), mask)
            loss_moments = _moment_loss(x_hat, x, mask)
            loss_g = (loss_adv + self.config.supervised_weight * torch.sqrt(loss_sup + 1e-12)
                      + self.config.moment_weight * loss_moments)
            if self.config.dynamics_weight:
                loss_g = loss_g + self.config.dynamics_weight * torch.sqrt(self._dynamics_loss(h_hat, static, mask) + 1e-12)
            opt_g = optimizers["generator"]
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

            # Embedder and recovery: reconstruct, and keep latents the supervisor can follow.
            x_tilde = self.nets["recovery"](h)
            loss_e = 10 * torch.sqrt(_masked_mse(x_tilde, x, mask)) + 0.1 * self._supervised_loss(h, bare["supervisor"](h, static), mask)
            opt_e = optimizers["embedder"]
            opt_e.zero_grad(set_to_none=True)
            loss_e.backward()
            opt_e.step()

        # Discriminator: real latents vs both kinds of generated ones; stepped only while it is not winning.
        with torch.no_grad():
            h_real = bare["embedder"](x, static)
            e_hat = bare["generator"](self._noise(b, steps, generator, x.device), static) * m3
            h_hat = bare["supervisor"](e_hat, static) * m3
        # One forward of the (DDP-wrapped) discriminator over the three batches: one backward follows it.
        y_real, y_fake, y_fake_e = self.nets["discriminator"](
            torch.cat([h_real, h_hat, e_hat]), torch.cat([static, static, static])
        ).split(b)
        loss_d = (
            F.binary_cross_entropy_with_logits(y_real, torch.ones_like(y_real), weight=m3)
            + F.binary_cross_entropy_with_logits(y_fake, torch.zeros_like(y_fake), weight=m3)
            + self.config.gamma * F.binary_cross_entropy_with_logits(y_fake_e, torch.zeros_like(y_fake_e), weight=m3)
        )
        opt_d = optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        if loss_d.item() > 0.15:
            opt_d.step()
        return {"loss_g": float(loss_g.detach()), "loss_e": float(loss_e.detach()), "loss_d": float(loss_d.detach())}

    @torch.no_grad()
    def generate(self, num_rows: int, conditions: Mapping[str, np.ndarray] | None, generator: torch.Generator) -> np.ndarray:
        """``num_rows`` encoded sequences ``(n, T, C)``: ``r(s(g(z)))``, zero on the padding of ``conditions["mask"]``."""
        layout = self.layout
        cond = dict(conditions or {})
        mask_all = torch.as_tensor(cond.get("mask", np.ones((num_rows, layout.steps))), dtype=torch.float32)
        static_all = torch.as_tensor(cond.get("static", np.zeros((num_rows, layout.static_dim))), dtype=torch.float32)
        g, s, r = self.unwrapped("generator"), self.unwrapped("supervisor"), self.unwrapped("recovery")
        device = self.device
        out, start = [], 0
        for size in iter_chunks(num_rows, self.config.sample_batch_size):
            mask = mask_all[start : start + size].to(device)[:, :, None]
            static = static_all[start : start + size].to(device)
            start += size
            z = self._noise(size, layout.steps, generator, device)
            e_hat = g(z, static) * mask
            x_hat = r(s(e_hat, static) * mask) * mask
            out.append(x_hat.cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32)
