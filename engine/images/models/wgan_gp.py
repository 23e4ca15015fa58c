"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty.

The DCGAN networks, with a critic that normalises each image on its own
(the penalty is per image, so batch statistics would couple them), several
critic steps on fresh real batches per generator step, and the paper's Adam
settings (lr 1e-4, betas (0, 0.9)). Class-conditional through the same label
embedding and projection as the DCGAN.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from engine.core.contract import BatchSampler
from engine.core.params import Choice, Float, Int, Pair, param
from engine.core.wgan import wgan_gp_critic_loss
from engine.images.models.batches import ImageBatches
from engine.images.models.dcgan import DCGANConfig, DCGANModel


@dataclass
class WGANGPConfig(DCGANConfig):
    """Hyperparameters of WGAN-GP; ``critic_iterations`` and ``gp_weight`` are the paper's n_critic and lambda."""

    lr: float = param(1e-4, Float(gt=0), "Adam learning rate of both networks")
    betas: tuple[float, float] = param((0.0, 0.9), Pair(Float(ge=0, lt=1)), "Adam betas of both networks")
    discriminator_norm: str = param(
        "layer", Choice("layer", "none", because="the gradient penalty is per image, so the critic cannot use BatchNorm"),
        "normalisation in the critic",
    )
    critic_iterations: int = param(5, Int(min=1), "critic steps, on fresh real batches, per generator step")
    gp_weight: float = param(10.0, Float(ge=0), "weight of the gradient penalty")


class WGANGPModel(DCGANModel):
    """WGAN-GP on the model contract."""

    name: ClassVar[str] = "wgan_gp"
    config_class: ClassVar[type] = WGANGPConfig

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        shape = (self.layout.channels, self.layout.height, self.layout.width)
        # Each optimisation step takes critic_iterations fresh real batches.
        return ImageBatches(data, shape, batch_size, rng, steps_per_batch=self.config.critic_iterations)

    def train_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
        generator: torch.Generator,
    ) -> dict[str, float]:
        reals, labels = batch
        if reals.dim() == 4:  # critic_iterations == 1: the sampler yields plain batches
            reals, labels = reals.unsqueeze(0), labels.unsqueeze(0)
        g_net, d_net = self.nets["generator"], self.nets["discriminator"]
        bare_g, bare_d = self.unwrapped("generator"), self.unwrapped("discriminator")
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]

        for real, lab in zip(reals, labels):
            y = self._labels(lab)
            n = real.shape[0]
            with torch.no_grad():
                fake = bare_g(self._noise(n, generator), y)
            loss_d, wasserstein, penalty = wgan_gp_critic_loss(d_net, real, fake, y, self.config.gp_weight, generator)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

        y = self._labels(labels[-1])
        fake = g_net(self._noise(reals.shape[1], generator), y)
        loss_g = -bare_d(fake, y).mean()  # the bare critic: its gradients here are discarded
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {
            "wasserstein": float(wasserstein.detach()),
            "gradient_penalty": float(penalty.detach()),
            "loss_g": float(loss_g.detach()),
        }
