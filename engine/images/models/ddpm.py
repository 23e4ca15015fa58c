"""DDPM (Ho et al. 2020): a denoising diffusion model of images, unconditional or class-conditional.

A diffusers ``UNet2DModel`` learns to predict the noise added to an image at a
random step of the forward process (epsilon-prediction, plain MSE, the paper's
"simple" loss). Images come from the reverse process, run with an exponential
moving average (EMA) of the UNet's weights, either by the ancestral DDPM
sampler (all ``timesteps`` steps) or by DDIM (Song et al. 2021, eta = 0, a few
dozen deterministic steps). With classes, the class index is embedded and
added to the timestep embedding inside the UNet (plain class conditioning, no
classifier-free guidance).

Image sizes: the UNet halves the resolution ``len(block_out_channels) - 1``
times, so its input side must be a multiple of ``2 ** (len - 1)``. The default
three blocks need a multiple of 4, which 28 (MNIST) and 32 are, so nothing is
padded there. Other combinations (28 with four blocks) are zero-padded inside
the model to the next multiple and the prediction is cropped back: the
diffusion process itself lives on the real ``H x W`` pixels only (noise, loss
and samples never include the border), so padding is an implementation detail
of the network and changes no maths.

Only the maths lives here; the training loop owns epochs, devices and DDP.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import nn

from engine.core.errors import InvalidConditionError
from engine.core.contract import BatchSampler, TorchSynthModel, iter_chunks
from engine.images.models.batches import ImageBatches
from engine.core.diffusion import ddim_scheduler
from engine.core.ema import ema_copy, ema_decay, update_ema
from engine.core.params import Bool, Choice, Dims, Float, Int, ModelConfig, OrNone, invalid_parameter, param
from engine.images.transforms import ImageLayout

BETA_SCHEDULES = ("linear", "squaredcos_cap_v2")
SAMPLERS = ("ddpm", "ddim")
DEFAULT_DDIM_STEPS = 50


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass
class DDPMConfig(ModelConfig):
    """Hyperparameters of the DDPM (each field's rule and help: ``describe_parameters(DDPMConfig)``).

    The diffusion follows Ho et al. (T = 1000, linear betas 1e-4 .. 0.02,
    epsilon-prediction). The UNet defaults are far smaller than the paper's
    (35.7M parameters for CIFAR-10) so that MNIST-sized images train on a CPU.
    """

    timesteps: int = param(1000, Int(min=2), "number of forward-process steps T")
    beta_schedule: str = param(
        "linear", Choice(*BETA_SCHEDULES),
        "'linear' (Ho et al.; rescaled by 1000 / T for other T, as Nichol & Dhariwal do, so the end points keep "
        "their meaning) or 'squaredcos_cap_v2' (the cosine schedule of Nichol & Dhariwal)",
    )
    block_out_channels: tuple[int, ...] = param(
        (32, 64, 64), Dims(min_len=1, what="UNet channels per resolution level"),
        "channels of the UNet's resolution levels, finest first; each level after the first halves the resolution",
    )
    layers_per_block: int = param(
        2, Int(min=1), "residual blocks per level on the way down (the way up has one more, as in diffusers and the paper)"
    )
    norm_num_groups: int = param(8, Int(min=1), "GroupNorm groups; must divide every width")
    attention_head_dim: int | None = param(
        None, OrNone(Int(min=1)),
        "channels per attention head at the lowest resolution (the only level with self-attention, plus the middle "
        "block); must divide its width; None is one head over all channels, as in the paper",
    )
    dropout: float = param(0.0, Float(ge=0, lt=1), "dropout in the residual blocks")
    lr: float = param(2e-4, Float(gt=0), "AdamW learning rate")
    weight_decay: float = param(0.0, Float(ge=0), "AdamW weight decay")
    max_grad_norm: float = param(1.0, Float(ge=0), "global gradient-norm clip (the paper clips at 1); 0 turns it off")
    ema_decay: float = param(0.999, Float(ge=0, lt=1), "decay of the EMA weights used for sampling")
    ema_warmup: bool = param(
        True, Bool(),
        "ramp the decay up as min(ema_decay, (1 + n) / (10 + n)) after n updates, so a short run's EMA is not "
        "mostly the random initialisation",
    )
    sampler: str = param(
        "ddim", Choice(*SAMPLERS),
        "default sampler of DDPM.generate; DDIM is the default because on a CPU 1000 ancestral steps are ~20x slower",
    )
    sampling_steps: int | None = param(
        None, OrNone(Int(min=1)),
        "default number of reverse steps, at most timesteps; None is timesteps for 'ddpm' and 50 for 'ddim'",
    )
    ddim_eta: float = param(0.0, Float(ge=0), "DDIM's eta (0 = deterministic given the initial noise)")
    sample_batch_size: int = param(
        64, Int(min=1),
        "images denoised together while generating (64 is the fastest on a 2-core CPU at 28x28; larger chunks suit a GPU)",
    )

    def check_combination(self) -> None:
        """The UNet's widths must suit its GroupNorm groups and attention heads; sampling steps fit in the timesteps."""
        owner = self.owner()
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise invalid_parameter(
                owner, "norm_num_groups",
                f"a divisor of every entry of 'block_out_channels' {self.block_out_channels} (it does not divide {bad[0]})",
                self.norm_num_groups,
            )
        lowest = self.block_out_channels[-1]
        if self.attention_head_dim is not None and lowest % self.attention_head_dim:
            raise invalid_parameter(
                owner, "attention_head_dim", f"None or an integer >= 1 dividing the lowest resolution's width {lowest}",
                self.attention_head_dim,
            )
        if self.sampling_steps is not None and self.sampling_steps > self.timesteps:
            raise invalid_parameter(
                owner, "sampling_steps", f"None or an integer in 1..{self.timesteps} (the timesteps)", self.sampling_steps
            )


def _check_steps(steps: Any, timesteps: int, what: str) -> None:
    if not _is_int(steps) or not 1 <= steps <= timesteps:
        raise ValueError(f"The {what!r} parameter must be an integer in 1..{timesteps} (the timesteps). Got {steps!r} instead.")


class DDPMModel(TorchSynthModel):
    """A denoising diffusion model of images on the model contract.

    ``nets["unet"]`` is the trained UNet; ``shadow_nets["ema_unet"]`` its EMA
    copy, updated after every optimisation step and used for generation.
    """

    name: ClassVar[str] = "ddpm"
    config_class: ClassVar[type] = DDPMConfig
    layout_class: ClassVar[type] = ImageLayout

    def __init__(self, config: DDPMConfig, layout: ImageLayout):
        super().__init__(config, layout)
        if layout.height != layout.width:
            raise ValueError(f"DDPM needs square images; got {layout.height}x{layout.width}.")
        c = config
        multiple = 2 ** (len(c.block_out_channels) - 1)
        side = -(-layout.height // multiple) * multiple
        extra = side - layout.height
        # (left, right, top, bottom) for F.pad; the odd pixel, if any, goes right/bottom.
        self._pad = (extra // 2, extra - extra // 2, extra // 2, extra - extra // 2)
        levels = len(c.block_out_channels)
        self.nets["unet"] = UNet2DModel(
            sample_size=side,
            in_channels=layout.channels,
            out_channels=layout.channels,
            block_out_channels=c.block_out_channels,
            layers_per_block=c.layers_per_block,
            # Self-attention only where the map is smallest (cheap there, and where global structure
            # is decided); the middle block, at the same resolution, keeps its attention too.
            down_block_types=("DownBlock2D",) * (levels - 1) + ("AttnDownBlock2D",),
            up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (levels - 1),
            attention_head_dim=c.attention_head_dim,
            norm_num_groups=c.norm_num_groups,
            dropout=c.dropout,
            num_class_embeds=layout.num_classes or None,
        )
        self.shadow_nets["ema_unet"] = ema_copy(self.nets["unet"])
        self.ema_updates = 0
        self.noise_scheduler = DDPMScheduler(**self._schedule_kwargs())

    @property
    def conditional(self) -> bool:
        return self.layout.num_classes > 0

    def _schedule_kwargs(self) -> dict[str, Any]:
        c = self.config
        kwargs: dict[str, Any] = {
            "num_train_timesteps": c.timesteps,
            "beta_schedule": c.beta_schedule,
            "prediction_type": "epsilon",
            # The predicted x0 is clipped to the data range [-1, 1] at every reverse step.
            "clip_sample": True,
            "clip_sample_range": 1.0,
            # Few-step samplers start at t = T - 1 (pure noise, as trained) rather than at a
            # "leading" grid point below it (Lin et al. 2024, table 2).
            "timestep_spacing": "trailing",
            "variance_type": "fixed_small",  # sigma_t^2 = beta~_t: the paper's better choice for CIFAR-10
        }
        if c.beta_schedule == "linear":
            scale = 1000.0 / c.timesteps
            kwargs["beta_start"] = 1e-4 * scale
            kwargs["beta_end"] = min(0.02 * scale, 0.999)
        return kwargs

    # -------------------------------------------------------------- training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "unet": torch.optim.AdamW(self.nets["unet"].parameters(), lr=c.lr, weight_decay=c.weight_decay, foreach=True)
        }

    def batch_sampler(self, data: np.ndarray, batch_size: int, rng: np.random.Generator) -> BatchSampler:
        shape = (self.layout.channels, self.layout.height, self.layout.width)
        return ImageBatches(data, shape, batch_size, rng)

    def _predict_noise(
        self, unet: nn.Module, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None
    ) -> torch.Tensor:
        """The UNet's noise prediction for ``x`` at ``t``, padded to the UNet's side and cropped back."""
        left, right, top, bottom = self._pad
        if left or right or top or bottom:
            x = F.pad(x, self._pad)
        # return_dict=False: DDP passes a plain tuple through untouched.
        eps = unet(x, t, class_labels=labels, return_dict=False)[0]
        if left or right or top or bottom:
            eps = eps[..., top : top + self.layout.height, left : left + self.layout.width]
        return eps

    def train_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
        generator: torch.Generator,
    ) -> dict[str, float]:
        images, labels = batch
        n = images.shape[0]
        device = images.device
        # Timesteps and noise from the step generator on the CPU: reproducible on any device.
        t = torch.randint(0, self.config.timesteps, (n,), generator=generator).to(device)
        noise = torch.randn(images.shape, generator=generator, dtype=images.dtype).to(device)
        noisy = self.noise_scheduler.add_noise(images, noise, t)
        pred = self._predict_noise(self.nets["unet"], noisy, t, labels if self.conditional else None)
        loss = F.mse_loss(pred, noise)
        opt = optimizers["unet"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        metrics = {"loss": float(loss.detach())}
        if self.config.max_grad_norm > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.nets["unet"].parameters(), self.config.max_grad_norm)
            metrics["grad_norm"] = float(grad_norm)
        opt.step()
        self.update_ema()
        return metrics

    def current_ema_decay(self) -> float:
        """The decay the next EMA update uses (ramped up during warm-up)."""
        return ema_decay(self.config.ema_decay, self.ema_updates, self.config.ema_warmup)

    def update_ema(self) -> None:
        """Move the EMA weights towards the current UNet weights by one step."""
        update_ema(self.shadow_nets["ema_unet"], self.unwrapped("unet"), self.current_ema_decay())
        self.ema_updates += 1

    # ------------------------------------------------------------ generation
    def make_sampling_scheduler(self, sampler: str, steps: int) -> DDPMScheduler | DDIMScheduler:
        """A reverse-process scheduler on the training noise schedule, with ``steps`` steps set."""
        if sampler == "ddpm":
            scheduler: DDPMScheduler | DDIMScheduler = DDPMScheduler.from_config(self.noise_scheduler.config)
            scheduler.set_timesteps(steps)
            return scheduler
        return ddim_scheduler(self.noise_scheduler, steps)

    def resolve_sampling(self, sampler: str | None = None, steps: int | None = None) -> tuple[str, int]:
        """The sampler and step count a :meth:`generate` call uses (its arguments over the config's defaults)."""
        c = self.config
        sampler = c.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r}; expected one of {', '.join(map(repr, SAMPLERS))}.")
        if steps is None:
            if sampler == c.sampler and c.sampling_steps is not None:
                steps = c.sampling_steps
            else:
                steps = c.timesteps if sampler == "ddpm" else min(DEFAULT_DDIM_STEPS, c.timesteps)
        _check_steps(steps, c.timesteps, "steps")
        return sampler, int(steps)

    def _condition_labels(self, num_rows: int, conditions: Any) -> np.ndarray | None:
        if not self.conditional:
            if conditions is not None:
                raise InvalidConditionError("This model was trained without labels; it cannot generate requested classes.")
            return None
        if conditions is None:
            raise ValueError("A class-conditional model needs one label per image.")
        labels = np.asarray(conditions)
        if labels.shape != (num_rows,):
            raise InvalidConditionError(f"Expected {num_rows} class indices, one per image; got shape {labels.shape}.")
        integral = np.issubdtype(labels.dtype, np.integer) or (
            np.issubdtype(labels.dtype, np.floating) and bool(np.all(labels == np.rint(labels)))
        )
        if not integral:
            raise InvalidConditionError(f"Class indices must be integers; got dtype {labels.dtype}.")
        labels = labels.astype(np.int64)
        k = self.layout.num_classes
        if num_rows and (labels.min() < 0 or labels.max() >= k):
            raise InvalidConditionError(f"Class indices must be in 0..{k - 1}; got {labels.min()}..{labels.max()}.")
        return labels

    @torch.no_grad()
    def generate(
        self, num_rows: int, conditions: np.ndarray | None, generator: torch.Generator, *,
        sampler: str | None = None, steps: int | None = None,
    ) -> np.ndarray:
        """Encoded image rows sampled from the EMA UNet.

        Args:
            num_rows: number of images.
            conditions: one class index per image (int ``(num_rows,)``); required
                when the model is class-conditional, ``None`` otherwise.
            generator: a CPU generator; every random draw (initial noise, DDPM
                step noise) comes from it on the CPU, so a seed gives the same
                noise on any device.
            sampler: ``"ddpm"`` or ``"ddim"``; default ``config.sampler``.
            steps: reverse steps; default ``config.sampling_steps`` or the sampler's default.

        Returns:
            float32 ``(num_rows, layout.dim)``: pixels in [-1, 1], then the class index (-1 when unconditional).
        """
        sampler, steps = self.resolve_sampling(sampler, steps)
        labels = self._condition_labels(num_rows, conditions)
        scheduler = self.make_sampling_scheduler(sampler, steps)
        step_kwargs: dict[str, Any] = {"eta": float(self.config.ddim_eta)} if sampler == "ddim" else {}
        unet = self.shadow_nets["ema_unet"]
        was_training = unet.training
        unet.eval()
        lay = self.layout
        device = next(unet.parameters()).device
        out = np.empty((num_rows, lay.dim), dtype=np.float32)
        start = 0
        try:
            for n in iter_chunks(num_rows, self.config.sample_batch_size):
                x = torch.randn((n, lay.channels, lay.height, lay.width), generator=generator).to(device)
                y = None if labels is None else torch.from_numpy(labels[start : start + n]).to(device)
                for t in scheduler.timesteps:
                    eps = self._predict_noise(unet, x, t, y)
                    x = scheduler.step(eps, t, x, generator=generator, return_dict=False, **step_kwargs)[0]
                out[start : start + n, :-1] = x.clamp_(-1.0, 1.0).reshape(n, -1).cpu().numpy()
                start += n
        finally:
            unet.train(was_training)
        out[:, -1] = -1.0 if labels is None else labels.astype(np.float32)
        return out

    # ------------------------------------------------------------------ state
    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": self.ema_updates}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.ema_updates = int(state.get("ema_updates", 0))

    @staticmethod
    def count_parameters(module: nn.Module) -> int:
        """Number of parameters of a module (for reports)."""
        return sum(p.numel() for p in module.parameters())
