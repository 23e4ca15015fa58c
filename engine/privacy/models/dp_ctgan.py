"""DP-CTGAN: CTGAN whose critic is trained with DP-SGD (Opacus), so the generator is post-processing.

Only the critic (discriminator) reads real rows. Its gradient on the real rows of a
Poisson-sampled batch is computed per row by Opacus' :class:`GradSampleModule`, clipped and
noised (:mod:`engine.privacy.dp_sgd`); its gradient on generated rows reads no real row and
joins the update as it is. The generator only ever sees the private critic and noise.

Departures from CTGAN, each forced by the per-row privacy unit:

- ``pac = 1``: a PacGAN group would mix several real rows in one "sample".
- The standard (cross-entropy) GAN loss instead of WGAN-GP: the gradient penalty is a
  gradient of a gradient, which per-sample hooks do not support.
- Conditional vectors. A real row's vector marks its own category in a column drawn
  uniformly (a function of the row and fresh randomness); generated rows' vectors are
  drawn from category frequencies released with Laplace noise (``category_frequencies``,
  computed by the front door), never from the real counts, and training-by-sampling
  (which picks real rows by category) is not used.
- No BatchNorm where real rows pass (the critic has none; the generator keeps its own).

The guarantee covers the whole pipeline only when the model is fitted through
:class:`engine.privacy.synthesizer.DPSynthesizer` (private preprocessing, noisy counts, the
noise solved from the budget, training stopped at it). Fitted as a plain table model
(``TabularSynthesizer(model="dp_ctgan")``, ``synth fit``) it trains with DP-SGD's clipping
and noise but with the ordinary encoder, which reads the rows, and no accounting: no
guarantee is claimed then (``privacy_`` stays empty and no report prints one).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.contract import BatchSampler
from engine.core.params import Float, Int, invalid_parameter, param
from engine.privacy.dp_sgd import Frequencies, PoissonBatches, PrivateSteps, empty_grad_samples, private_module, private_step
from engine.tabular.models.ctgan import CTGAN, CTGANConfig
from engine.tabular.transforms.layout import EncodedLayout


@dataclass
class DPCTGANConfig(CTGANConfig):
    """CTGAN's hyperparameters plus DP-SGD's (the front door fills these from the budget)."""

    pac: int = param(1, Int(min=1, max=1), "rows the critic judges together: 1 under DP (one row per privacy unit)")
    gradient_penalty_weight: float = param(0.0, Float(ge=0, le=0), "unused under DP (the critic takes the cross-entropy loss)")
    weight_decay: float = param(0.0, Float(ge=0), "Adam weight decay of both networks")
    noise_multiplier: float = param(1.0, Float(ge=0), "Gaussian noise std over the clipping norm (set from the budget)")
    max_grad_norm: float = param(1.0, Float(gt=0), "per-row gradient clipping norm")
    sample_rate: float = param(0.01, Float(gt=0, le=1), "Poisson sampling rate of real rows per step")
    max_private_steps: int = param(0, Int(min=0), "critic steps the budget affords (0: no limit); a step beyond it is refused")
    category_frequencies: tuple = param((), Frequencies(), "noisy category frequencies per discrete column (for conditional vectors)")
    noise_seed: int = param(0, Int(min=0), "seed of the Gaussian noise")


class DPCTGAN(PrivateSteps, CTGAN):
    """CTGAN with a differentially private critic (see the module docstring)."""

    name: ClassVar[str] = "dp_ctgan"
    # Fitting it through TabularSynthesizer would train it without the accountant (and encode the data non-privately).
    standalone_fit_error: ClassVar[str] = (
        "Model 'dp_ctgan' trains under differential privacy and must be fitted through "
        "engine.DPSynthesizer(model='dp_ctgan', epsilon=..., delta=...), which accounts the budget of the whole pipeline; "
        "TabularSynthesizer.fit would train it with no privacy accounting (no epsilon). A fitted, saved model loads and samples normally."
    )
    config_class: ClassVar[type] = DPCTGANConfig

    def __init__(self, config: DPCTGANConfig, layout: EncodedLayout):
        super().__init__(config, layout)
        if config.category_frequencies:
            if len(config.category_frequencies) != self.cond.num_columns or any(
                len(f) != w for f, w in zip(config.category_frequencies, self.cond.widths)
            ):
                raise invalid_parameter("DPCTGAN", "category_frequencies", f"one list per discrete column of widths {self.cond.widths.tolist()}", "lists of other widths")
            self.cond.frequencies = [np.asarray(f, dtype=np.float64) / max(sum(f), 1e-12) for f in config.category_frequencies]
        self.start_private_steps()
        self._gsm: Any = None

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
        spans = self.cond.spans
        codes = np.stack([data[:, s.start : s.stop].argmax(axis=1) for s in spans], axis=1) if spans else np.zeros((len(data), 0), np.int64)
        sampler = PoissonBatches(data, self.config.sample_rate, rng, extra=lambda rows, idx, r: self._conditions(codes[idx], r))
        self._expected = sampler.expected_batch_size
        self._fake_rows = max(1, int(round(self._expected)))
        return sampler

    def _conditions(self, real_codes: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Conditional vectors: the real rows' own categories, and fresh draws for generated rows."""
        k = self.cond.num_columns
        m = self._fake_rows
        if k == 0:
            z = torch.zeros
            return {"cond_real": z(len(real_codes), 0), "cond_fake": z(m, 0), "cond_g": z(m, 0), "mask_g": z(m, 0)}
        cols = rng.integers(0, k, size=len(real_codes))
        cond_real = self.cond.one_hot(cols, real_codes[np.arange(len(real_codes)), cols])
        out = {"cond_real": cond_real}
        for key in ("fake", "g"):
            c = rng.integers(0, k, size=m)
            cum = self.cond._cumulative(self.cond.frequencies)
            cat = np.minimum((cum[c] < rng.random(m)[:, None]).sum(axis=1), cum.shape[1] - 1)
            out[f"cond_{key}"] = self.cond.one_hot(c, cat)
            if key == "g":
                out["mask_g"] = self.cond.mask(c)
        return out

    def train_step(
        self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        c = self.config
        self.check_private_step("DP-CTGAN", "critic step")
        g_net, bare_g, bare_d = self.nets["generator"], self.unwrapped("generator"), self.unwrapped("discriminator")
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        opt_d.expected_batch_size = max(int(round(self._expected)), 1)
        real, cond_real, cond_fake = batch["real"], batch["cond_real"], batch["cond_fake"]
        params = [p for p in bare_d.parameters() if p.requires_grad]

        # Public part: the critic's loss on generated rows (reads no real row), with the per-row hooks off.
        with torch.no_grad():
            fake = self._activate(bare_g(torch.cat([self._noise(len(cond_fake), generator), cond_fake], dim=1)), generator)
        self._gsm.disable_hooks()
        y_fake = bare_d(torch.cat([fake, cond_fake], dim=1))
        loss_fake = F.binary_cross_entropy_with_logits(y_fake, torch.zeros_like(y_fake))
        fake_grads = torch.autograd.grad(loss_fake, params)
        self._gsm.enable_hooks()

        # Private part: per-row gradients of the loss on real rows, clipped and noised by the DP optimiser.
        opt_d.zero_grad(set_to_none=True)
        if len(real):
            y_real = self._gsm(torch.cat([real, cond_real], dim=1))
            loss_real = F.binary_cross_entropy_with_logits(y_real, torch.ones_like(y_real))
            loss_real.backward()
        else:
            loss_real = real.new_zeros(())
            empty_grad_samples(params)
        private_step(opt_d, fake_grads)
        self.private_steps += 1

        # The generator: non-saturating loss against the private critic, plus the condition loss.
        cond_g, mask_g = batch["cond_g"], batch["mask_g"]
        raw = g_net(torch.cat([self._noise(len(cond_g), generator), cond_g], dim=1))
        fake = self._activate(raw, generator)
        self._gsm.disable_hooks()  # until after the backward: no per-row gradient of generated rows is wanted
        y = bare_d(torch.cat([fake, cond_g], dim=1))
        cond_loss = self._condition_loss(raw, cond_g, mask_g)
        loss_g = F.binary_cross_entropy_with_logits(y, torch.ones_like(y)) + cond_loss
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._gsm.enable_hooks()
        opt_g.step()
        for p in params:  # the generator's backward reached the critic: those gradients are not an update
            p.grad = None
        if "generator_ema" in self.shadow_nets:
            from engine.core.ema import ema_decay, update_ema

            update_ema(self.shadow_nets["generator_ema"], bare_g, ema_decay(c.ema_decay, self.ema_updates))
            self.ema_updates += 1
        return {
            "loss_d_real": float(loss_real.detach()),
            "loss_d_fake": float(loss_fake.detach()),
            "loss_g": float(loss_g.detach()),
            "loss_condition": float(cond_loss.detach()),
            "batch_rows": float(len(real)),
        }
