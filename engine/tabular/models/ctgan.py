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

from engine.core.contract import BatchSampler
from engine.tabular.models.base import GENERATION_CHUNK_ROWS, TabularTorchModel
from engine.tabular.models.conditional import ConditionalVector, TrainingSampler
from engine.core.ema import ema_copy, ema_decay, update_ema
from engine.core.params import Dims, Float, Int, ModelConfig, Pair, param
from engine.core.precision import InferenceCopies
from engine.tabular.transforms.layout import EncodedLayout


@dataclass
class CTGANConfig(ModelConfig):
    """Hyperparameters of CTGAN (defaults follow the paper unless noted)."""

    embedding_dim: int = param(128, Int(min=1), "size of the noise vector")
    generator_dims: tuple[int, ...] = param((256, 256), Dims(), "widths of the generator's residual blocks")
    discriminator_dims: tuple[int, ...] = param((256, 256), Dims(), "widths of the critic's layers")
    generator_lr: float = param(2e-4, Float(gt=0), "Adam learning rate of the generator")
    discriminator_lr: float = param(2e-4, Float(gt=0), "Adam learning rate of the critic")
    betas: tuple[float, float] = param((0.5, 0.9), Pair(Float(ge=0, lt=1)), "Adam betas of both networks")
    weight_decay: float = param(1e-6, Float(ge=0), "Adam weight decay of both networks")
    pac: int = param(10, Int(min=1), "rows the critic judges together (PacGAN)")
    discriminator_steps: int = param(1, Int(min=1), "critic updates per generator update")
    gradient_penalty_weight: float = param(10.0, Float(ge=0), "weight of the WGAN-GP gradient penalty")
    gumbel_tau: float = param(0.2, Float(gt=0), "temperature of the Gumbel-softmax on one-hot blocks")
    # Rows are generated from a moving average of the generator's weights (not in the paper; see
    # engine.core.ema): 0 generates from the last step's weights.
    ema_decay: float = param(0.998, Float(ge=0, lt=1), "decay of the generator's weight average used to generate (0: none)")


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


class SamplingGenerator:
    """A trained :class:`Generator` as sampling runs it: same outputs up to rounding, less memory traffic.

    Two rewrites. In eval mode each BatchNorm is an affine map, folded here into the linear layer
    before it. And rows are held feature-major, as the columns of one buffer ``[h_k; ...; h_1; x]``
    (features x rows): each residual block reads its input, ``[h_{i-1}; ...; x]``, as a contiguous
    suffix of the buffer's rows and writes its output into the rows just above, so the blocks'
    concatenations never copy a row. Built once per set of weights (see ``InferenceCopies``).
    """

    def __init__(self, generator: Generator, dtype: torch.dtype):
        self.dtype = dtype
        self.width = generator.out.in_features  # rows of the buffer
        self.in_dim = generator.blocks[0].fc.in_features if len(generator.blocks) else self.width
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        with torch.no_grad():
            for block in generator.blocks:
                bn = block.bn
                scale = torch.rsqrt(bn.running_var + bn.eps) * (bn.weight if bn.affine else 1.0)
                shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
                weight = block.fc.weight * scale[:, None]
                bias = block.fc.bias * scale + shift
                self.layers.append((weight.to(dtype).contiguous(), bias.to(dtype)[:, None].contiguous()))
            self.out_weight = generator.out.weight.detach().to(dtype).contiguous()
            self.out_bias = generator.out.bias.detach().to(dtype)[:, None].contiguous()

    def buffer(self, num_rows: int, device: torch.device) -> torch.Tensor:
        """An uninitialised buffer for ``num_rows`` rows; the caller fills its last ``in_dim`` rows with the inputs."""
        return torch.empty(self.width, num_rows, dtype=self.dtype, device=device)

    def __call__(self, buffer: torch.Tensor) -> torch.Tensor:
        """The raw outputs, feature-major ``(data_dim, num_rows)``, of the inputs in ``buffer``'s last rows."""
        start = self.width - self.in_dim
        for weight, bias in self.layers:
            hidden = buffer[start - weight.shape[0] : start]
            torch.addmm(bias, weight, buffer[start:], out=hidden)
            hidden.relu_()
            start -= weight.shape[0]
        return torch.addmm(self.out_bias, self.out_weight, buffer)


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


class CTGAN(TabularTorchModel):
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
        self._num_softmax_spans = sum(s.activation != "tanh" for s in layout.spans)  # one uniform each per row
        self._triangles: dict[tuple[int, torch.device], torch.Tensor] = {}

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
        # The bare critic scores the fakes: its weights' gradients would be discarded (zeroed before its next
        # step), so DDP must not all-reduce them and autograd need not compute them: with the critic's
        # weights frozen for this backward, it computes only the gradient that flows to the fakes (the
        # largest product of the critic's backward, its first layer's weight gradient, is skipped; the
        # generator's gradients are the same, bit for bit).
        frozen = [p for p in bare_d.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            y_fake = bare_d(torch.cat([fake, cond_g], dim=1))
            cond_loss = self._condition_loss(raw, cond_g, mask_g)
            loss_g = -y_fake.mean() + cond_loss
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
        finally:
            for p in frozen:
                p.requires_grad_(True)
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
    def _draw_spans(self, raw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Hard rows in span form ``(len(spans), n)`` from the generator's feature-major raw output ``(dim, n)``.

        A value span is the tanh of its output; a one-hot span is the index of one category drawn from
        its softmax by the inverse CDF: one uniform per block, the same distribution as the Gumbel-max
        trick the training step relaxes, without a uniform and two logarithms per category.
        """
        spans = self.layout.spans
        n = raw.shape[1]
        out = torch.empty(len(spans), n, dtype=torch.float32, device=raw.device)
        u = torch.rand(self._num_softmax_spans, n, generator=generator, device="cpu").to(raw.device)
        k = 0
        for j, span in enumerate(spans):
            if span.activation == "tanh":
                torch.tanh(raw[span.start], out=out[j])
                continue
            block = raw[span.start : span.stop]
            # Unnormalised: the uniform is scaled by the block's total instead (half the cost of softmax),
            # which also keeps rounding in the cumulative sum from ever skipping the last category.
            # Feature-major, the cumulative sum runs across rows, where torch's cumsum is slow: a product
            # with a lower-triangular matrix of ones computes it several times faster.
            cdf = self._lower_ones(span.width, raw.device) @ (block - block.amax(dim=0)).exp_()
            below = cdf < u[k] * cdf[-1]
            out[j] = below.sum(dim=0).clamp_(max=span.width - 1)
            k += 1
        return out

    def _lower_ones(self, width: int, device: torch.device) -> torch.Tensor:
        key = (width, device)
        if key not in self._triangles:
            self._triangles[key] = torch.tril(torch.ones(width, width, device=device))
        return self._triangles[key]

    def _sampling_generator(self, dtype: torch.dtype) -> SamplingGenerator:
        trained = self.shadow_nets["generator_ema"] if "generator_ema" in self.shadow_nets else self.unwrapped("generator")
        return self._inference.get("generator", trained, dtype, SamplingGenerator)

    @torch.no_grad()
    def generate_spans(
        self,
        num_rows: int,
        category_conditions: Mapping[str, int] | None,
        generator: torch.Generator,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> np.ndarray:
        """``num_rows`` hard rows in span form ``(num_rows, len(layout.spans))`` (see ``engine.tabular.transforms.layout``).

        The generator's matrix products run in ``dtype``; noise and draws come from ``generator`` on the CPU.
        """
        g = self._sampling_generator(dtype)
        out = torch.empty(len(self.layout.spans), num_rows, dtype=torch.float32)
        emb, device = self.config.embedding_dim, self.device
        inputs_at = g.width - g.in_dim  # the buffer's rows [inputs_at, inputs_at + emb) hold the noise
        for start in range(0, num_rows, GENERATION_CHUNK_ROWS):
            n = min(GENERATION_CHUNK_ROWS, num_rows - start)
            buffer = g.buffer(n, device)
            noise, cond = buffer[inputs_at : inputs_at + emb], buffer[inputs_at + emb :]
            positions = self.cond.draw_for_generation(n, category_conditions, generator)
            # Drawn in float32 on the CPU whatever the dtype and device: the same draws everywhere, and
            # torch's float32 normal kernel is faster than its bfloat16 one.
            if device.type == "cpu" and noise.dtype == torch.float32:
                torch.randn(emb, n, generator=generator, out=noise)
            else:
                noise.copy_(torch.randn(emb, n, generator=generator))
            if positions is not None:
                cond.zero_()
                cond[torch.from_numpy(positions).to(device), torch.arange(n, device=device)] = 1.0
            out[:, start : start + n] = self._draw_spans(g(buffer).float(), generator).cpu()
        return out.numpy().T

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
