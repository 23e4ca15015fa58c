"""A denoising diffusion model of log-magnitude spectrograms, inverted to waveforms by Griffin-Lim.

SpecGAN (Donahue et al. 2019) showed that a generator of spectrograms makes
more recognisable speech than one of raw waveforms (Inception score 6.03
against WaveGAN's 4.67 on SC09): a 1-second clip at 8 kHz is 8,000 samples
whose phases a waveform model must get right, but only 128 x 63 magnitudes
that carry what a listener (or a classifier) hears. Here the spectrogram is
an image for a diffusers ``UNet2DModel`` trained as a DDPM (Ho et al. 2020,
epsilon-prediction) and sampled with DDIM; the magnitudes become a waveform
by fast Griffin-Lim (:mod:`engine.audio.stft`).

The image is the STFT's log magnitude in decibels, mapped to [-1, 1] over a
fixed dynamic range below a full-scale sine's level (no statistics of the
data: every worker encodes alike), without the Nyquist bin (restored as
silence), so ``n_fft // 2`` bins by the frames of a centred STFT.

With classes, the class is embedded into the UNet's timestep embedding and
dropped (replaced by a "no class" index) for a share of the training
examples, which teaches the same network the unconditional model:
classifier-free guidance (Ho & Salimans 2021) then extrapolates from the
unconditional towards the conditional prediction when sampling, which makes
the clips more clearly of their class at some cost in variety.

Only the maths lives here; the training loop owns epochs, devices and DDP.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from torch import nn

from engine.audio.stft import frames_for, griffin_lim, magnitude
from engine.audio.transforms import AudioLayout
from engine.core.contract import TorchSynthModel, iter_chunks
from engine.core.diffusion import ddim_scheduler
from engine.core.ema import ema_copy, ema_decay, update_ema
from engine.core.params import Dims, Float, Int, ModelConfig, invalid_parameter, param


@dataclass
class SpecDiffusionConfig(ModelConfig):
    """Hyperparameters of the spectrogram diffusion model (rules and help: ``describe_parameters(SpecDiffusionConfig)``)."""

    n_fft: int = param(256, Int(min=16), "STFT window in samples (a power of two); the image has n_fft / 2 frequency rows")
    hop_length: int = param(128, Int(min=1), "STFT hop in samples; the image has 1 + samples / hop columns")
    dynamic_range_db: float = param(80.0, Float(gt=0), "decibels below a full-scale sine that the image spans (quieter is silence)")
    block_out_channels: tuple[int, ...] = param(
        (32, 64, 96), Dims(min_len=1, what="UNet channels per resolution level"),
        "channels of the UNet's levels, finest first; each level after the first halves both sides",
    )
    layers_per_block: int = param(1, Int(min=1), "residual blocks per UNet level on the way down")
    norm_num_groups: int = param(8, Int(min=1), "GroupNorm groups; must divide every width")
    timesteps: int = param(1000, Int(min=2), "forward-process steps (cosine schedule, Nichol & Dhariwal)")
    sampling_steps: int = param(25, Int(min=1), "DDIM steps when sampling (at most timesteps)")
    label_dropout: float = param(0.1, Float(ge=0, lt=1), "share of training examples whose class is hidden (classifier-free guidance)")
    # On FSDD (speaker theo held out) after 30 minutes of training, 4 took the judge's conditional accuracy from 0.67 (at 2) to 0.81,
    # and the clips' diversity from 0.77 to 0.69 of the real clips' (bench/audio_fsdd.py).
    guidance_scale: float = param(
        4.0, Float(ge=0), "classifier-free guidance when sampling by class: 1 is the plain conditional model, more is more typical of the class")
    griffin_lim_iterations: int = param(32, Int(min=0), "Griffin-Lim iterations that find the phases")
    lr: float = param(1e-3, Float(gt=0), "AdamW learning rate")
    max_grad_norm: float = param(1.0, Float(ge=0), "gradient-norm clip; 0 turns it off")
    ema_decay: float = param(0.995, Float(ge=0, lt=1), "decay of the EMA weights used for sampling (ramped up at first)")
    sample_batch_size: int = param(64, Int(min=1), "spectrograms denoised together while generating")

    def check_combination(self) -> None:
        owner = self.owner()
        if self.n_fft & (self.n_fft - 1):
            raise invalid_parameter(owner, "n_fft", "a power of two", self.n_fft)
        if self.hop_length > self.n_fft:
            raise invalid_parameter(owner, "hop_length", f"at most n_fft={self.n_fft}", self.hop_length)
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise invalid_parameter(owner, "norm_num_groups", f"a divisor of every width in {self.block_out_channels}", self.norm_num_groups)
        if self.sampling_steps > self.timesteps:
            raise invalid_parameter(owner, "sampling_steps", f"at most timesteps={self.timesteps}", self.sampling_steps)


class SpecDiffusionModel(TorchSynthModel):
    """The spectrogram diffusion model on the model contract: ``generate`` returns waveforms ``(N, T)`` in [-1, 1].

    ``nets["unet"]`` is trained; ``shadow_nets["ema_unet"]``, its moving average, generates.
    """

    name: ClassVar[str] = "specdiff"
    config_class: ClassVar[type] = SpecDiffusionConfig
    layout_class: ClassVar[type] = AudioLayout
    supports_native_conditions: ClassVar[bool] = True
    supports_grad_accumulation: ClassVar[bool] = True  # one mean loss, one optimiser

    def __init__(self, config: SpecDiffusionConfig, layout: AudioLayout):
        super().__init__(config, layout)
        c = config
        self.bins = c.n_fft // 2
        self.frames = frames_for(layout.num_samples, c.hop_length)
        # The UNet halves both sides once per level after the first: the image is padded to fit and cropped back.
        multiple = 2 ** (len(c.block_out_channels) - 1)
        self._pad = (0, -self.frames % multiple, 0, -self.bins % multiple)
        levels = len(c.block_out_channels)
        # One more class index than there are classes: the "no class" of classifier-free guidance.
        self.null_class = layout.num_classes
        self.nets["unet"] = UNet2DModel(
            sample_size=(self.bins + self._pad[3], self.frames + self._pad[1]),
            # A second input channel holds each row's frequency: convolutions are blind to where they are, and
            # a tone or a formant means something only at its own height in the image.
            in_channels=2, out_channels=1,
            block_out_channels=c.block_out_channels, layers_per_block=c.layers_per_block,
            # Self-attention only at the coarsest level, where it is cheap and the clip's overall shape is decided.
            down_block_types=("DownBlock2D",) * (levels - 1) + ("AttnDownBlock2D",),
            up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (levels - 1),
            norm_num_groups=c.norm_num_groups,
            num_class_embeds=layout.num_classes + 1 if layout.num_classes else None,
        )
        self.shadow_nets["ema_unet"] = ema_copy(self.nets["unet"])
        self.ema_updates = 0
        # The cosine schedule (Nichol & Dhariwal 2021): a small image is pure noise well before the last linear
        # step, which wastes those steps and leaves the class too few steps to decide where the energy goes.
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=c.timesteps, beta_schedule="squaredcos_cap_v2",
                                             prediction_type="epsilon", clip_sample=True, clip_sample_range=1.0)
        # A full-scale sine's peak STFT magnitude (Hann window: n_fft / 4) is the top of the range.
        self._top_db = 20 * math.log10(c.n_fft / 4)

    # ------------------------------------------------------------- encoding
    def encode(self, waves: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(B, T)`` -> spectrogram images ``(B, 1, n_fft / 2, frames)`` in [-1, 1]."""
        mag = magnitude(waves.float(), self.config.n_fft, self.config.hop_length)[:, : self.bins]
        db = 20 * torch.log10(mag.clamp_min(1e-10))
        half = self.config.dynamic_range_db / 2
        return ((db - (self._top_db - half)) / half).clamp(-1, 1)[:, None]

    def decode(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Spectrogram images -> waveforms ``(B, T)`` by Griffin-Lim (phases drawn from ``generator``)."""
        c = self.config
        half = c.dynamic_range_db / 2
        db = images[:, 0].float() * half + (self._top_db - half)
        mag = 10 ** (db / 20)
        # The bottom of the range is silence, not a faint hiss across every bin.
        mag = torch.where(images[:, 0] <= -1 + 1e-3, torch.zeros_like(mag), mag)
        mag = F.pad(mag, (0, 0, 0, 1))  # the Nyquist bin, silent
        return griffin_lim(mag, c.n_fft, c.hop_length, self.layout.num_samples, c.griffin_lim_iterations, generator)

    # -------------------------------------------------------------- training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.AdamW(self.nets["unet"].parameters(), lr=self.config.lr, foreach=True)}

    def _predict_noise(self, unet: nn.Module, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if any(self._pad):
            x = F.pad(x, self._pad)
        rows = torch.linspace(-1, 1, x.shape[-2], device=x.device, dtype=x.dtype)
        x = torch.cat([x, rows[:, None].expand(x.shape[-2:]).expand(len(x), 1, -1, -1)], dim=1)
        # return_dict=False: DDP passes a plain tuple through untouched.
        eps = unet(x, t, class_labels=labels, return_dict=False)[0]
        return eps[..., : self.bins, : self.frames]

    def train_step(self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
                   generator: torch.Generator) -> dict[str, float]:
        x0 = self.encode(batch["audio"])
        n, device = len(x0), x0.device
        t = torch.randint(0, self.config.timesteps, (n,), generator=generator).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        labels = None
        if self.layout.num_classes:
            hide = torch.rand(n, generator=generator) < self.config.label_dropout
            labels = torch.where(hide, self.null_class, batch["label"].cpu()).to(device)
        pred = self._predict_noise(self.nets["unet"], self.noise_scheduler.add_noise(x0, noise, t), t, labels)
        loss = F.mse_loss(pred, noise)
        opt = optimizers["unet"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        metrics = {"loss": float(loss.detach())}
        if self.config.max_grad_norm > 0:
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.nets["unet"].parameters(), self.config.max_grad_norm))
        opt.step()
        update_ema(self.shadow_nets["ema_unet"], self.unwrapped("unet"), ema_decay(self.config.ema_decay, self.ema_updates))
        self.ema_updates += 1
        return metrics

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, num_rows: int, conditions: Any, generator: torch.Generator, *,
                 guidance_scale: float | None = None, sampling_steps: int | None = None) -> np.ndarray:
        """``num_rows`` waveforms ``(N, T)`` float32; ``conditions`` is None or one class index per clip.

        ``guidance_scale`` and ``sampling_steps`` override the config's for this call (both act only
        when sampling, so a trained model can be sampled with other settings).
        """
        if self.layout.num_classes and conditions is None:
            raise ValueError("A conditional spectrogram diffusion model needs one class index per clip.")
        # The config's own rules check the overrides: a copy with them is validated as it is built.
        given = {"guidance_scale": guidance_scale, "sampling_steps": sampling_steps}
        call = dataclasses.replace(self.config, **{k: v for k, v in given.items() if v is not None})
        guidance, steps = call.guidance_scale, call.sampling_steps
        codes = None if not self.layout.num_classes else torch.as_tensor(np.asarray(conditions), dtype=torch.long)
        unet = self.shadow_nets["ema_unet"].eval()
        # "trailing": the first step starts from pure noise, as trained.
        scheduler = ddim_scheduler(self.noise_scheduler, steps, timestep_spacing="trailing")
        guided = codes is not None and guidance != 1.0
        out = np.empty((num_rows, self.layout.num_samples), dtype=np.float32)
        start = 0
        for n in iter_chunks(num_rows, self.config.sample_batch_size):
            x = torch.randn((n, 1, self.bins, self.frames), generator=generator).to(self.device)
            y = None if codes is None else codes[start:start + n].to(self.device)
            for t in scheduler.timesteps:
                if guided:
                    # One pass for both predictions: the class's and the "no class" one.
                    both = self._predict_noise(unet, torch.cat([x, x]), t, torch.cat([y, torch.full_like(y, self.null_class)]))
                    cond, uncond = both.chunk(2)
                    eps = uncond + guidance * (cond - uncond)
                else:
                    eps = self._predict_noise(unet, x, t, y)
                x = scheduler.step(eps, t, x, return_dict=False)[0]
            out[start:start + n] = self.decode(x.clamp(-1, 1).cpu(), generator).clamp(-1, 1).numpy()
            start += n
        return out

    # ------------------------------------------------------------------ state
    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": self.ema_updates}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.ema_updates = int(state.get("ema_updates", 0))
