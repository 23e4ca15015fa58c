"""DP-TVAE: a tabular VAE whose encoder and decoder are both trained with DP-SGD.

Every parameter sees real rows (the encoder reads them, the decoder reconstructs them), so
both networks are private. Per-row gradients come from ``torch.func`` (``vmap`` of ``grad``
over the rows): the decoder's learned output scale ``sigma`` is a bare parameter used in
the loss, outside any layer, which Opacus' per-layer hooks cannot see. Opacus' DP
optimiser then clips, noises and (across workers) all-reduces them, as for DP-CTGAN.

The networks are TVAE's encoder and decoder (plain MLPs, no BatchNorm, as Opacus needs),
without TVAE's conditional input: the conditional vector's category frequencies would read
the data. Generation decodes the prior as TVAE does.

As for DP-CTGAN, the guarantee covers the pipeline only through
:class:`engine.privacy.synthesizer.DPSynthesizer`; fitted as a plain table model it gets
DP-SGD's clipping and noise without private preprocessing or accounting, and claims nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.contract import BatchSampler
from engine.core.params import Dims, Float, Int, ModelConfig, param
from engine.privacy.dp_sgd import PoissonBatches, PrivateSteps, dp_optimizer, empty_grad_samples, private_step, worker_noise_seed
from engine.tabular.models.base import GENERATION_CHUNK_ROWS, TabularTorchModel
from engine.tabular.models.tvae import Decoder, Encoder
from engine.tabular.transforms.layout import EncodedLayout


@dataclass
class DPTVAEConfig(ModelConfig):
    """Hyperparameters of DP-TVAE (the DP-SGD fields are filled by the front door from the budget)."""

    embedding_dim: int = param(64, Int(min=1), "size of the latent code")
    compress_dims: tuple[int, ...] = param((128, 128), Dims(), "encoder widths")
    decompress_dims: tuple[int, ...] = param((128, 128), Dims(), "decoder widths")
    lr: float = param(1e-3, Float(gt=0), "Adam learning rate")
    loss_factor: float = param(2.0, Float(gt=0), "weight of the reconstruction term against the KL term")
    noise_multiplier: float = param(1.0, Float(ge=0), "Gaussian noise std over the clipping norm (set from the budget)")
    max_grad_norm: float = param(1.0, Float(gt=0), "per-row gradient clipping norm")
    sample_rate: float = param(0.01, Float(gt=0, le=1), "Poisson sampling rate of real rows per step")
    max_private_steps: int = param(0, Int(min=0), "steps the budget affords (0: no limit); a step beyond it is refused")
    noise_seed: int = param(0, Int(min=0), "seed of the Gaussian noise")


class DPTVAE(PrivateSteps, TabularTorchModel):
    """Tabular VAE trained with DP-SGD on encoder and decoder; conditions are met by rejection."""

    name: ClassVar[str] = "dp_tvae"
    # Fitting it through TabularSynthesizer would train it without the accountant (and encode the data non-privately).
    standalone_fit_error: ClassVar[str] = (
        "Model 'dp_tvae' trains under differential privacy and must be fitted through "
        "engine.DPSynthesizer(model='dp_tvae', epsilon=..., delta=...), which accounts the budget of the whole pipeline; "
        "TabularSynthesizer.fit would train it with no privacy accounting (no epsilon). A fitted, saved model loads and samples normally."
    )
    config_class: ClassVar[type] = DPTVAEConfig
    supports_native_conditions: ClassVar[bool] = False

    def __init__(self, config: DPTVAEConfig, layout: EncodedLayout):
        super().__init__(config, layout)
        self.nets["encoder"] = Encoder(layout.dim, config.compress_dims, config.embedding_dim)
        self.nets["decoder"] = Decoder(config.embedding_dim, config.decompress_dims, layout.dim)
        self.start_private_steps()
        self._expected = 1.0
        tanh = [s for s in layout.spans if s.activation == "tanh"]
        self._tanh_idx = torch.tensor([s.start for s in tanh], dtype=torch.long)
        self._soft = [(s.start, s.stop) for s in layout.spans if s.activation != "tanh"]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        params = list(self.unwrapped("encoder").parameters()) + list(self.unwrapped("decoder").parameters())
        opt = torch.optim.Adam(params, lr=c.lr)
        return {"vae": dp_optimizer(opt, noise_multiplier=c.noise_multiplier, max_grad_norm=c.max_grad_norm, expected_batch_size=1,
                                    seed=worker_noise_seed(c.noise_seed))}

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        sampler = PoissonBatches(data, self.config.sample_rate, rng)
        self._expected = sampler.expected_batch_size
        return sampler

    def _row_loss(self, params: dict[str, torch.Tensor], x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The loss of one row ``x`` (data_dim,) with latent noise ``eps`` (E,)."""
        enc = {k[len("encoder."):]: v for k, v in params.items() if k.startswith("encoder.")}
        dec = {k[len("decoder."):]: v for k, v in params.items() if k.startswith("decoder.")}
        mu, logvar = torch.func.functional_call(self.unwrapped("encoder"), enc, (x[None],))
        z = mu + eps[None] * torch.exp(0.5 * logvar)
        rec = torch.func.functional_call(self.unwrapped("decoder"), dec, (z,))[0]
        sigma = dec["sigma"]
        t = self._tanh_idx.to(x.device)
        std = sigma[t]
        recon = (((x[t] - torch.tanh(rec[t])) ** 2) / 2 / std**2).sum() + torch.log(std).sum()
        for s, e in self._soft:
            recon = recon - (F.log_softmax(rec[s:e], dim=0) * x[s:e]).sum()
        kld = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
        return self.config.loss_factor * recon + kld

    def train_step(
        self, batch: torch.Tensor, optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        c = self.config
        self.check_private_step("DP-TVAE", "step")
        opt = optimizers["vae"]
        opt.expected_batch_size = max(int(round(self._expected)), 1)
        named = {f"encoder.{k}": v for k, v in self.unwrapped("encoder").named_parameters()}
        named.update({f"decoder.{k}": v for k, v in self.unwrapped("decoder").named_parameters()})
        opt.zero_grad(set_to_none=True)
        x = batch  # (B, data_dim), Poisson-sized
        if len(x):
            eps = torch.randn(len(x), c.embedding_dim, generator=generator, device="cpu").to(x.device)
            detached = {k: v.detach() for k, v in named.items()}
            per_row = torch.func.vmap(torch.func.grad_and_value(self._row_loss), in_dims=(None, 0, 0))(detached, x, eps)
            grads, losses = per_row
            for k, p in named.items():
                p.grad_sample = grads[k]  # (B, *p.shape)
            loss = float(losses.mean())
        else:
            empty_grad_samples(list(named.values()))
            loss = 0.0
        private_step(opt)
        self.private_steps += 1
        with torch.no_grad():
            self.unwrapped("decoder").sigma.clamp_(0.01, 1.0)
        return {"loss": loss, "batch_rows": float(len(x))}

    @torch.no_grad()
    def generate_spans(
        self, num_rows: int, category_conditions: Mapping[str, int] | None, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> np.ndarray:
        """``num_rows`` decoded samples of the prior in span form ``(num_rows, len(layout.spans))``."""
        if category_conditions:
            raise NotImplementedError("DP-TVAE has no conditional input; conditions are met by rejection.")
        dec = self.unwrapped("decoder")
        was_training = dec.training
        dec.eval()
        sigma = dec.sigma.float()
        spans = self.layout.spans
        out = np.empty((len(spans), num_rows), dtype=np.float32)
        for start in range(0, num_rows, GENERATION_CHUNK_ROWS):
            n = min(GENERATION_CHUNK_ROWS, num_rows - start)
            z = torch.randn(n, self.config.embedding_dim, generator=generator, device="cpu").to(self.device)
            rec = dec(z).float()
            noise = torch.randn(rec.shape, generator=generator, device="cpu").to(self.device)
            for j, span in enumerate(spans):
                if span.activation == "tanh":
                    out[j, start : start + n] = torch.tanh(rec[:, span.start] + noise[:, span.start] * sigma[span.start]).cpu().numpy()
                else:
                    out[j, start : start + n] = rec[:, span.start : span.stop].argmax(dim=1).cpu().numpy()
        dec.train(was_training)
        return out.T

