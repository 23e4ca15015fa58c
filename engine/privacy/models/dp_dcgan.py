"""DP-DCGAN: the image DCGAN whose discriminator is trained with DP-SGD (Opacus); the generator is post-processing.

Only the discriminator reads real images. Its gradient on the real images of a
Poisson-sampled batch and on a fixed number of generated images is computed per image by
Opacus' :class:`GradSampleModule`, clipped and noised (:mod:`engine.privacy.dp_sgd`), as in
Opacus' own DCGAN example: the generated images read no real image, but clipped like the real
ones they keep the two halves of the loss in balance. The generator only ever sees the private
discriminator, noise and labels drawn from released class frequencies.

The networks are the DCGAN's own (:mod:`engine.images.models.image_nets`), with these
departures, each forced by the per-image privacy unit:

- **No BatchNorm in the discriminator**: its normalisation is ``"layer"``, i.e.
  ``GroupNorm(1, channels)`` (a LayerNorm over channels, height and width of each image),
  which Opacus supports; BatchNorm would mix the images of a batch, so no per-image
  gradient would exist. The generator keeps its BatchNorm (it never sees a real image).
- **The standard non-saturating DCGAN loss only** (cross-entropy on real and generated
  images, and ``-log D(G(z))`` for the generator). No WGAN-GP variant: its gradient penalty
  is a gradient of a gradient, which Opacus' per-sample hooks do not support.
- **Class conditioning** as in the DCGAN: a label embedding with the noise in the generator
  and a projection discriminator (the label's embedding dotted with the image features), so
  the real label feeds the private discriminator too and is covered by the same clipping.
  Labels of generated images are drawn from ``class_frequencies``, released with Laplace
  noise by the front door, never from the real counts.

The guarantee covers the whole pipeline only when the model is fitted through
:class:`engine.privacy.synthesizer.DPSynthesizer` (class names public or released, noisy
counts, the noise solved from the budget, training stopped at it). Fitted as a plain image
model (``ImageSynthesizer(model="dp_dcgan")``) it trains with DP-SGD's clipping and noise but
without accounting: no guarantee is claimed then (``privacy_`` stays empty).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.contract import BatchSampler
from engine.core.params import Choice, Float, Int, Refused, Rule, invalid_parameter, param
from engine.images.models.dcgan import DCGANConfig, DCGANModel
from engine.images.transforms import ImageLayout
from engine.privacy.dp_sgd import PoissonBatches, PrivateSteps, private_module, private_step


class Shares(Rule):
    """A list of non-negative finite numbers (class frequencies), stored as a tuple; may be empty."""

    type_name = "tuple[float, ...]"

    def check(self, value: Any) -> tuple[float, ...]:
        if isinstance(value, (str, bytes, Mapping)):  # iterable, but surely not a list of frequencies
            raise Refused
        try:
            out = tuple(float(x) for x in value)
        except (TypeError, ValueError):
            raise Refused from None
        if any(x < 0 or not np.isfinite(x) for x in out):
            raise Refused
        return out

    def text(self, plural: bool = False) -> str:
        return "a list of non-negative numbers (one per class)"


@dataclass
class DPDCGANConfig(DCGANConfig):
    """The DCGAN's hyperparameters plus DP-SGD's (the front door fills these from the budget)."""

    discriminator_norm: str = param(
        "layer",
        Choice("layer", "none", because="Opacus needs per-image gradients, which BatchNorm's batch statistics do not have"),
        "normalisation in the discriminator: 'layer' is GroupNorm(1, C), per image",
    )
    noise_multiplier: float = param(1.0, Float(ge=0), "Gaussian noise std over the clipping norm (set from the budget)")
    max_grad_norm: float = param(1.0, Float(gt=0), "per-image gradient clipping norm")
    sample_rate: float = param(0.01, Float(gt=0, le=1), "Poisson sampling rate of real images per step")
    max_private_steps: int = param(0, Int(min=0), "discriminator steps the budget affords (0: no limit); a step beyond is refused")
    class_frequencies: tuple = param((), Shares(), "noisy class frequencies for the labels of generated images (empty: uniform)")
    noise_seed: int = param(0, Int(min=0), "seed of the Gaussian noise")


class DPDCGAN(PrivateSteps, DCGANModel):
    """The DCGAN with a differentially private discriminator (see the module docstring)."""

    name: ClassVar[str] = "dp_dcgan"
    config_class: ClassVar[type] = DPDCGANConfig

    def __init__(self, config: DPDCGANConfig, layout: ImageLayout):
        super().__init__(config, layout)
        for module in self.nets["discriminator"].modules():
            # Opacus' backward hooks see each layer's output; an in-place activation would overwrite it
            # (autograd refuses). Out of place computes the same values.
            if isinstance(module, torch.nn.LeakyReLU):
                module.inplace = False
        k = layout.num_classes
        freqs = np.asarray(config.class_frequencies, dtype=np.float64)
        if len(freqs) and len(freqs) != k:
            raise invalid_parameter("DPDCGAN", "class_frequencies", f"one number per class ({k})", f"{len(freqs)} numbers")
        self.class_p = (freqs / freqs.sum() if len(freqs) and freqs.sum() > 0 else np.full(k, 1.0 / max(k, 1))) if k else None
        self.start_private_steps()
        self._gsm: Any = None
        self._expected = 1.0
        self._fake_images = 1

    # ------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        opts = super().configure_optimizers()
        self._gsm, opts["discriminator"] = private_module(
            self.unwrapped("discriminator"), opts["discriminator"], noise_multiplier=c.noise_multiplier,
            max_grad_norm=c.max_grad_norm, noise_seed=c.noise_seed,
        )
        return opts

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        # batch_size is not used: DP-SGD's batches are Poisson samples at config.sample_rate.
        sampler = PoissonBatches(data, self.config.sample_rate, rng, extra=lambda rows, idx, r: self._fake_labels(r))
        self._expected = sampler.expected_batch_size
        self._fake_images = max(1, int(round(self._expected)))
        return sampler

    def _fake_labels(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Labels of the generated images of a step: drawn from the released frequencies (never the real counts)."""
        m = self._fake_images
        if self.class_p is None:
            empty = torch.full((m,), -1, dtype=torch.long)
            return {"labels_fake": empty, "labels_g": empty}
        k = len(self.class_p)
        return {key: torch.from_numpy(rng.choice(k, size=m, p=self.class_p).astype(np.int64)) for key in ("labels_fake", "labels_g")}

    def train_step(
        self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        c, lay = self.config, self.layout
        self.check_private_step("DP-DCGAN", "discriminator step")
        g_net, bare_g, bare_d = self.nets["generator"], self.unwrapped("generator"), self.unwrapped("discriminator")
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        rows = batch["real"]  # (B, C*H*W + 1): pixels in [-1, 1], then the class index
        real = rows[:, :-1].reshape(len(rows), lay.channels, lay.height, lay.width)  # (B, C, H, W)
        y_real = self._labels(rows[:, -1].round().long())
        y_fake, y_g = self._labels(batch["labels_fake"]), self._labels(batch["labels_g"])
        m = len(batch["labels_fake"])
        params = [p for p in bare_d.parameters() if p.requires_grad]

        # Generated images (they read no real image) join the real ones in one per-image pass, so that Opacus
        # clips both alike: left unclipped, the generated images' full gradient outweighed the clipped real
        # ones and the discriminator learned to call every image fake. Clipping them costs no privacy (a real
        # image still moves the noised sum by at most max_grad_norm); the mean runs over the expected
        # number of real images plus the fixed number of generated ones.
        opt_d.expected_batch_size = max(int(round(self._expected)), 1) + m
        with torch.no_grad():
            fake = bare_g(self._noise(m, generator), y_fake)
        images = torch.cat([real, fake])  # (B + m, C, H, W)
        labels = None if y_real is None else torch.cat([y_real, y_fake])
        targets = torch.cat([torch.ones(len(real), device=real.device), torch.zeros(m, device=real.device)])
        opt_d.zero_grad(set_to_none=True)
        scores = self._gsm(images, labels)
        loss_d = F.binary_cross_entropy_with_logits(scores, targets)
        loss_d.backward()
        private_step(opt_d)
        self.private_steps += 1
        with torch.no_grad():
            s_real, s_fake = scores.detach()[: len(real)], scores.detach()[len(real) :]
            loss_real = F.binary_cross_entropy_with_logits(s_real, torch.ones_like(s_real)) if len(real) else real.new_zeros(())
            loss_fake = F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake))

        # The generator: non-saturating loss against the private discriminator.
        fake = g_net(self._noise(m, generator), y_g)
        self._gsm.disable_hooks()  # until after the backward: no per-image gradient of generated images is wanted
        s = bare_d(fake, y_g)
        loss_g = F.binary_cross_entropy_with_logits(s, torch.ones_like(s))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._gsm.enable_hooks()
        opt_g.step()
        for p in params:  # the generator's backward reached the discriminator: those gradients are not an update
            p.grad = None
        return {
            "loss_d_real": float(loss_real.detach()),
            "loss_d_fake": float(loss_fake.detach()),
            "loss_g": float(loss_g.detach()),
            "batch_images": float(len(real)),
        }
