"""Spectrograms of waveforms in torch, mel filters, and back to waveforms by Griffin-Lim.

A spectrogram model generates magnitudes only; the phase is found again by
the fast Griffin-Lim algorithm (Griffin & Lim 1984, with the momentum of
Perraudin et al. 2013, as librosa's ``griffinlim``): alternate between a
waveform whose STFT has the wanted magnitudes and the phases of that STFT.
SpecGAN (Donahue et al. 2019) inverts its spectrograms the same way.
"""
from __future__ import annotations

import numpy as np
import torch

_EPS = 1e-10  # keeps a filter's slopes finite when two mel edges share a frequency bin


def magnitude(waves: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``|STFT|`` ``(B, n_fft // 2 + 1, frames)`` of waveforms ``(B, T)`` (Hann window, centred frames)."""
    window = torch.hann_window(n_fft, device=waves.device)
    return torch.stft(waves, n_fft, hop, window=window, center=True, return_complex=True).abs()


def power(waves: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``|STFT|^2`` as ``re^2 + im^2``, per unit of window sum (a full-scale sine's bin: 0.25), ``(B, n_fft // 2 + 1, frames)``.

    Unlike :func:`magnitude` it is smooth at silence, so a loss may back-propagate twice through it.
    """
    window = torch.hann_window(n_fft, device=waves.device, dtype=waves.dtype)
    spec = torch.view_as_real(torch.stft(waves, n_fft, hop, window=window, center=True, return_complex=True))
    return spec.pow(2).sum(-1) / window.sum() ** 2


def frames_for(num_samples: int, hop: int) -> int:
    """Frames of a centred STFT of ``num_samples`` samples."""
    return 1 + num_samples // hop


def griffin_lim(mag: torch.Tensor, n_fft: int, hop: int, length: int, iterations: int,
                generator: torch.Generator, momentum: float = 0.99) -> torch.Tensor:
    """Waveforms ``(B, length)`` whose STFT magnitudes approach ``mag`` ``(B, n_fft // 2 + 1, frames)``.

    The starting phases are drawn from ``generator`` (on the CPU), so a seed gives the same waveforms.
    """
    window = torch.hann_window(n_fft, device=mag.device)
    phase = torch.rand(mag.shape, generator=generator).to(mag.device) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(mag), phase)
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        wave = torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=length)
        rebuilt = torch.stft(wave, n_fft, hop, window=window, center=True, return_complex=True)
        # The momentum step pushes the phases past the plain projection: fewer iterations for the same fit.
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        angles = angles / angles.abs().clamp_min(1e-16)
        previous = rebuilt
    return torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=length)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular filters ``(n_mels, n_fft // 2 + 1)`` equally spaced on the HTK mel scale."""
    fmax = sample_rate / 2 if fmax is None else fmax
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / np.maximum(centre - lower, _EPS)
    falling = (upper - bins[None, :]) / np.maximum(upper - centre, _EPS)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
