"""CTGAN (Xu et al. 2019, arXiv 1907.00503): a conditional GAN for tables.

Residual generator conditioned on the conditional vector; PacGAN critic;
WGAN-GP loss; training-by-sampling so that rare categories are learned.
Only the maths lives here; the training loop owns epochs, devices and DDP.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import GENERATION_CHUNK_ROWS, BatchSampler, TorchSynthModel
from engine.models.conditional import ConditionalVector, TrainingSampler
from engine.models.ema import ema_copy, ema_decay, update_ema
from engine.models.params import check_dims, check_int, check_number
from engine.models.precision import InferenceCopies
from engine.training.config import InvalidOptionError
from engine.transforms.layout import EncodedLayout


@dataclass
class CTGANConfig:
    """Hyperparameters of CTGAN (defaults follow the paper unless noted)."""

    embedding_dim: int = 128  # size of the noise vector
    generator_dims: tuple[int, ...] = (256, 256)  # widths of the residual blocks
    discriminator_dims: tuple[int, ...] = (256, 256)
    generator_lr: float = 2e-4
    discriminator_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 1e-6
    pac: int = 10  # rows the critic judges together (PacGAN)
    discriminator_steps: int = 1  # critic updates per generator update
    gradient_penalty_weight: float = 10.0
    gumbel_tau: float = 0.2  # temperature of the Gumbel-softmax on one-hot blocks
    # Rows are generated from a moving average of the generator's weights (not in the paper; see
    # engine.models.ema): 0 generates from the last step's weights.
    ema_decay: float = 0.998

    def __post_init__(self) -> None:
        owner = "CTGAN"
        self.generator_dims = check_dims(owner, "generator_dims", self.generator_dims)
        self.discriminator_dims = check_dims(owner, "discriminator_dims", self.discriminator_dims)
        for name in ("embedding_dim", "pac", "discriminator_steps"):
            check_int(owner, name, getattr(self, name))
        for name in ("generator_lr", "discriminator_lr", "gumbel_tau"):
            setattr(self, name, check_number(owner, name, getattr(self, name)))
        for name in ("weight_decay", "gradient_penalty_weight"):
            setattr(self, name, check_number(owner, name, getattr(self, name), low_inclusive=True))
        self.ema_decay = check_number(owner, "ema_decay", self.ema_decay, low_inclusive=True, high=1.0)
        betas = self.betas
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise InvalidOptionError(f"The 'betas' parameter of CTGAN must be a pair of numbers in [0, 1). Got {betas!r} instead.")
        self.betas = tuple(check_number(owner, "betas", b, low_inclusive=True, high=1.0) for b in betas)  # type: ignore[assignment]


class Residual(nn.Module):
    """Linear -> BatchNorm -> ReLU, concatenated with its input."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        # Under DDP on CPU, SyncBatchNorm is unavailable: the training loop keeps
        # this BatchNorm and DDP broadcasts rank 0's running statistics each forward.
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.bn(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    def __init__(self, in_dim: int, dims: tuple[int, ...], data_dim: int):
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_dim
        for d in dims:
            blocks.append(Residual(width, d))
            width += d
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(width, data_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(x))  # raw logits / pre-activations, (B, data_dim)

    @torch.no_grad()
    def forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` without gradients, each block writing into one preallocated row buffer.

        The residual blocks' concatenations copy every row again per block; at sampling time,
        where the blocks' outputs are never needed apart, one buffer laid out as
        ``[h_k, ..., h_1, x]`` holds them all and each block reads its input as a suffix of it.
        """
        widths = [block.fc.out_features for block in self.blocks]
        buf = x.new_empty(x.shape[0], x.shape[1] + sum(widths))
        start = sum(widths)
        buf[:, start:] = x
        for block, d in zip(self.blocks, widths):
            buf[:, start - d : start] = F.relu(block.bn(block.fc(buf[:, start:])))
            start -= d
        return self.out(buf)


class Discriminator(nn.Module):
    """The PacGAN critic: scores groups of ``pac`` rows together."""

    def __init__(self, in_dim: int, dims: tuple[int, ...], pac: int):
        super().__init__()
        self.pac = pac
        layers: list[nn.Module] = []
        width = in_dim * pac
        for d in dims:
            layers += [nn.Linear(width, d), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            width = d
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, x.shape[1] * self.pac))  # (B / pac, 1)


class _CTGANBatches(BatchSampler):
    """Per step: real rows and conditional vectors for the critic, and fresh ones for the generator."""

    def __init__(self, model: "CTGAN", data: np.ndarray, batch_size: int, rng: np.random.Generator):
        self.model = model
        self.sampler = TrainingSampler(data, model.cond)
        self.batch_size = batch_size
        self.rng = rng
        self.steps = max(1, len(data) // batch_size)

    def __len__(self) -> int:
        return self.steps

    def _conditioned(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.batch_size
        if self.model.cond.num_columns == 0:
            idx = torch.from_numpy(self.rng.integers(0, len(self.sampler.data), size=n))
            empty = torch.zeros(n, 0)
            return self.sampler.data[idx], empty, empty
        columns, categories = self.sampler.sample_conditions(n, self.rng)
        real = self.sampler.sample_rows(columns, categories, self.rng)
        return real, self.model.cond.one_hot(columns, categories), self.model.cond.mask(columns)

    def epoch(self) -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(self.steps):
            d_steps = [self._conditioned() for _ in range(self.model.config.discriminator_steps)]
            _, cond_g, mask_g = self._conditioned()
            yield {
                "real": torch.stack([r for r, _, _ in d_steps]),  # (S, B, data_dim)
                "cond_d": torch.stack([c for _, c, _ in d_steps]),  # (S, B, cond_dim)
                "cond_g": cond_g,  # (B, cond_dim)
                "mask_g": mask_g,  # (B, num_discrete_columns)
            }


class CTGAN(TorchSynthModel):
    """Conditional tabular GAN on the model contract."""

    name: ClassVar[str] = "ctgan"
    config_class: ClassVar[type] = CTGANConfig
    supports_native_conditions: ClassVar[bool] = True

    def __init__(self, config: CTGANConfig, layout: EncodedLayout):
        super().__init__(config, layout)
        self.cond = ConditionalVector(layout)
        self.nets["generator"] = Generator(config.embedding_dim + self.cond.dim, config.generator_dims, layout.dim)
        self.nets["discriminator"] = Discriminator(layout.dim + self.cond.dim, config.discriminator_dims, config.pac)
        if config.ema_decay > 0:
            self.shadow_nets["generator_ema"] = ema_copy(self.nets["generator"])
        self.ema_updates = 0
        self._inference = InferenceCopies()
        softmax = [s for s in layout.spans if s.activation != "tanh"]
        self._softmax_spans = tuple(softmax)
        self._softmax_starts = torch.tensor([s.start for s in softmax], dtype=torch.int64)
        self._tanh_columns = torch.tensor([s.start for s in layout.spans if s.activation == "tanh"], dtype=torch.int64)

    # ------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "generator": torch.optim.Adam(self.nets["generator"].parameters(), lr=c.generator_lr, betas=c.betas, weight_decay=c.weight_decay, foreach=True),
            "discriminator": torch.optim.Adam(
                self.nets["discriminator"].parameters(), lr=c.discriminator_lr, betas=c.betas, weight_decay=c.weight_decay, foreach=True
            ),
        }

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        # Rows are judged in groups of `pac`: the batch is rounded down to a multiple of it.
        batch_size = max(self.config.pac, batch_size - batch_size % self.config.pac)
        sampler = _CTGANBatches(self, data, batch_size, rng)
        self.cond.frequencies = sampler.sampler.frequencies
        return sampler

    def _activate(self, raw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The training-time relaxation: tanh scalars, Gumbel-softmax on each one-hot block."""
        # One draw of Gumbel noise for the whole matrix; each one-hot block takes its slice.
        u = torch.rand(raw.shape, generator=generator, device="cpu").to(raw.device)
        noisy = raw - torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
        parts = []
        for span in self.layout.spans:
            if span.activation == "tanh":
                parts.append(torch.tanh(raw[:, span.start : span.stop]))
            else:
                parts.append(F.softmax(noisy[:, span.start : span.stop] / self.config.gumbel_tau, dim=1))
        return torch.cat(parts, dim=1)

    def _noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(n, self.config.embedding_dim, generator=generator, device="cpu").to(self.device)

    def _condition_loss(self, raw: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each row's generated category block against its conditional vector."""
        if self.cond.num_columns == 0:
            return raw.new_zeros(())
        losses = []
        for j, span in enumerate(self.cond.spans):
            offset = int(self.cond.offsets[j])
            target = cond[:, offset : offset + span.width].argmax(dim=1)
            losses.append(F.cross_entropy(raw[:, span.start : span.stop], target, reduction="none"))
        return (torch.stack(losses, dim=1) * mask).sum() / raw.shape[0]

    def train_step(
        self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer], generator: torch.Generator
    ) -> dict[str, float]:
        g_net, d_net = self.nets["generator"], self.nets["discriminator"]
        bare_g, bare_d = self.unwrapped("generator"), self.unwrapped("discriminator")
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        lam = self.config.gradient_penalty_weight
        pac = self.config.pac

        for real, cond in zip(batch["real"], batch["cond_d"]):
            n = real.shape[0]
            with torch.no_grad():
                # Fakes for the critic need no generator gradients; the bare module avoids a DDP forward
                # whose backward would never come.
                fake = self._activate(bare_g(torch.cat([self._noise(n, generator), cond], dim=1)), generator)
            real_in = torch.cat([real, cond], dim=1)
            fake_in = torch.cat([fake, cond], dim=1)
            alpha = torch.rand(n // pac, 1, 1, generator=generator, device="cpu").to(real.device)
            alpha = alpha.expand(-1, pac, real_in.shape[1]).reshape(n, -1)
            interp = (alpha * real_in + (1 - alpha) * fake_in).requires_grad_(True)
            # One critic forward for real, fake and interpolates: under DDP a second forward before the
            # backward (the gradient penalty's double backward) would break the reducer's bookkeeping.
            scores = d_net(torch.cat([real_in, fake_in, interp], dim=0))
            y_real, y_fake, y_interp = scores.split(n // pac)
            grad = torch.autograd.grad(y_interp.sum(), interp, create_graph=True)[0]
            penalty = ((grad.reshape(-1, pac * interp.shape[1]).norm(2, dim=1) - 1) ** 2).mean() * lam
            loss_d = y_fake.mean() - y_real.mean()
            opt_d.zero_grad(set_to_none=True)
            (loss_d + penalty).backward()
            opt_d.step()

        cond_g, mask_g = batch["cond_g"], batch["mask_g"]
        n = cond_g.shape[0]
        raw = g_net(torch.cat([self._noise(n, generator), cond_g], dim=1))
        fake = self._activate(raw, generator)
        # The bare critic scores the fakes: its gradients here are discarded (zeroed before its next step),
        # so DDP must not all-reduce them.
        y_fake = bare_d(torch.cat([fake, cond_g], dim=1))
        cond_loss = self._condition_loss(raw, cond_g, mask_g)
        loss_g = -y_fake.mean() + cond_loss
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if "generator_ema" in self.shadow_nets:
            update_ema(self.shadow_nets["generator_ema"], bare_g, ema_decay(self.config.ema_decay, self.ema_updates))
            self.ema_updates += 1
        return {
            "loss_d": float(loss_d.detach()),
            "gradient_penalty": float(penalty.detach()),
            "loss_g": float(loss_g.detach()),
            "loss_condition": float(cond_loss.detach()),
        }

    # ----------------------------------------------------------- generation
    def _sample_rows(self, raw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Hard rows from the generator's raw output: tanh scalars, one category drawn per one-hot block.

        Drawing from each block's softmax by its inverse CDF (one uniform per block) gives the same
        distribution as the Gumbel-max trick the training step relaxes, at a fraction of its cost:
        one uniform per block instead of one per category and no logarithms.
        """
        n = raw.shape[0]
        out = torch.zeros_like(raw)
        out[:, self._tanh_columns] = torch.tanh(raw[:, self._tanh_columns])
        if not self._softmax_spans:
            return out
        u = torch.rand(n, len(self._softmax_spans), generator=generator, device="cpu").to(raw.device)
        picks = torch.empty(n, len(self._softmax_spans), dtype=torch.int64, device=raw.device)
        for j, span in enumerate(self._softmax_spans):
            block = raw[:, span.start : span.stop]
            # Unnormalised: the uniform is scaled by the block's total instead (half the cost of softmax),
            # which also keeps rounding in the cumulative sum from ever skipping the last category.
            cdf = (block - block.amax(dim=1, keepdim=True)).exp_().cumsum_(dim=1)
            below = cdf < u[:, j : j + 1] * cdf[:, -1:]
            picks[:, j] = below.sum(dim=1).clamp_(max=span.width - 1)
        out.scatter_(1, picks + self._softmax_starts.to(raw.device), 1.0)
        return out

    @torch.no_grad()
    def generate(
        self,
        num_rows: int,
        category_conditions: Mapping[str, int] | None,
        generator: torch.Generator,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> np.ndarray:
        """``num_rows`` hard encoded rows; the generator's matrix products run in ``dtype``."""
        out = np.empty((num_rows, self.layout.dim), dtype=np.float32)
        generator_net = self.shadow_nets["generator_ema"] if "generator_ema" in self.shadow_nets else self.unwrapped("generator")
        with self._inference.evaluating("generator", generator_net, dtype) as g:
            for start in range(0, num_rows, GENERATION_CHUNK_ROWS):
                n = min(GENERATION_CHUNK_ROWS, num_rows - start)
                cond = self.cond.sample_for_generation(n, category_conditions, generator)
                x = torch.cat([self._noise(n, generator), cond.to(self.device)], dim=1)
                raw = g.forward_inference(x.to(dtype)).float()
                out[start : start + n] = self._sample_rows(raw, generator).cpu().numpy()
        return out

    # ---------------------------------------------------------------- state
    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        if "generator_ema" in self.shadow_nets and not any(k.startswith("generator_ema.") for k in tensors):
            # Saved before the moving average existed: it starts from the saved generator's weights.
            prefix = "generator."
            tensors = {**tensors, **{"generator_ema." + k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}}
        super().load_state_tensors(tensors)

    def extra_state(self) -> dict[str, Any]:
        return {"category_frequencies": [f.tolist() for f in self.cond.frequencies], "ema_updates": self.ema_updates}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        if "category_frequencies" in state:
            self.cond.frequencies = [np.asarray(f, dtype=np.float64) for f in state["category_frequencies"]]
        self.ema_updates = int(state.get("ema_updates", 0))
