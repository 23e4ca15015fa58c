"""DCGAN (Radford et al. 2015): convolutional GAN, unconditional or class-conditional.

Non-saturating GAN loss, Adam with beta1 = 0.5, N(0, 0.02) initialisation,
BatchNorm in both networks. With classes, the generator also receives a label
embedding and the discriminator is a projection discriminator. Only the maths
lives here; the training loop owns epochs, devices and DDP.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.contract import BatchSampler, TorchSynthModel
from engine.core.params import Choice, Float, Int, ModelConfig, Pair, param
from engine.images.models.batches import ImageBatches
from engine.images.models.image_nets import ConvDiscriminator, ConvGenerator
from engine.images.transforms import ImageLayout


@dataclass
class DCGANConfig(ModelConfig):
    """Hyperparameters of the DCGAN (defaults follow the paper)."""

    latent_dim: int = param(100, Int(min=1), "size of the noise vector")
    generator_width: int = param(
        64, Int(min=1), "channels of the last generator block; doubled per block towards the noise"
    )
    discriminator_width: int = param(64, Int(min=1), "channels of the first discriminator block; doubled per block")
    lr: float = param(2e-4, Float(gt=0), "Adam learning rate of both networks")
    betas: tuple[float, float] = param((0.5, 0.999), Pair(Float(ge=0, lt=1)), "Adam betas of both networks")
    discriminator_norm: str = param("batch", Choice("batch", "layer", "none"), "normalisation in the discriminator")


class DCGANModel(TorchSynthModel):
    """The DCGAN generator and discriminator on the model contract."""

    name: ClassVar[str] = "dcgan"
    config_class: ClassVar[type] = DCGANConfig
    layout_class: ClassVar[type] = ImageLayout

    def __init__(self, config: DCGANConfig, layout: ImageLayout):
        super().__init__(config, layout)
        c, k = config, layout.num_classes
        self.nets["generator"] = ConvGenerator(c.latent_dim, layout.height, layout.channels, c.generator_width, k)
        self.nets["discriminator"] = ConvDiscriminator(
            layout.height, layout.channels, c.discriminator_width, k, norm=c.discriminator_norm
        )

    @property
    def conditional(self) -> bool:
        return self.layout.num_classes > 0

    # -------------------------------------------------------------- training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            key: torch.optim.Adam(self.nets[key].parameters(), lr=c.lr, betas=c.betas, foreach=True)
            for key in ("generator", "discriminator")
        }

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        shape = (self.layout.channels, self.layout.height, self.layout.width)
        return ImageBatches(data, shape, batch_size, rng)

    def _noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        # Drawn on the CPU so that a seed gives the same images on any device.
        return torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)

    def _labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels if self.conditional else None

    def train_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
        generator: torch.Generator,
    ) -> dict[str, float]:
        real, labels = batch
        y = self._labels(labels)
        n = real.shape[0]
        g_net, d_net = self.nets["generator"], self.nets["discriminator"]
        bare_g, bare_d = self.unwrapped("generator"), self.unwrapped("discriminator")
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]

        with torch.no_grad():
            # The discriminator's fakes need no generator gradients: the bare module avoids a DDP
            # forward whose backward would never come.
            fake = bare_g(self._noise(n, generator), y)
        ones, zeros = torch.ones(n, device=real.device), torch.zeros(n, device=real.device)
        # Reals and fakes in separate batches, as in the paper: BatchNorm statistics of a mixed batch let
        # the discriminator separate them by batch-level cues and win at once. Each forward is followed by
        # its own backward, which DDP allows (the two all-reduced gradients add up).
        opt_d.zero_grad(set_to_none=True)
        loss_real = F.binary_cross_entropy_with_logits(d_net(real, y), ones)
        loss_real.backward()
        loss_fake = F.binary_cross_entropy_with_logits(d_net(fake, y), zeros)
        loss_fake.backward()
        opt_d.step()
        loss_d = loss_real.detach() + loss_fake.detach()

        fake = g_net(self._noise(n, generator), y)
        # The bare discriminator scores the fakes: its gradients here are discarded (zeroed before its
        # next step), so DDP must not all-reduce them.
        loss_g = F.binary_cross_entropy_with_logits(bare_d(fake, y), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, num_rows: int, conditions: np.ndarray | None, generator: torch.Generator) -> np.ndarray:
        """Encoded image rows; ``conditions`` holds one class index per image (required when conditional)."""
        if self.conditional and conditions is None:
            raise ValueError("A class-conditional model needs one label per image.")
        g = self.unwrapped("generator")
        was_training = g.training
        g.eval()
        out = np.empty((num_rows, self.layout.dim), dtype=np.float32)
        chunk = 512
        try:
            for start in range(0, num_rows, chunk):
                n = min(chunk, num_rows - start)
                y = None
                if self.conditional:
                    y = torch.as_tensor(np.asarray(conditions[start : start + n]), dtype=torch.long, device=self.device)
                out[start : start + n, :-1] = g(self._noise(n, generator), y).reshape(n, -1).cpu().numpy()
        finally:
            g.train(was_training)
        out[:, -1] = -1.0 if conditions is None else np.asarray(conditions, dtype=np.float32)
        return out
