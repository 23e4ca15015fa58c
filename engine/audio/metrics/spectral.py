"""Spectral features of clips, computed with numpy: log-mel spectrograms and per-clip summaries.

* :func:`log_mel` — the log of a mel-scaled power spectrogram (Hann window,
  HTK mel scale, triangular filters), ``(N, frames, n_mels)``;
* :func:`mel_statistics` — one vector per clip, the mean and standard deviation
  of each mel band over time: the feature space of the log-mel Fréchet
  distance (a Fréchet audio distance without a pretrained network);
* :func:`spectral_shape` — spectral centroid and bandwidth (Hz) and silence
  ratio of each clip, whose distributions the report compares.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.audio.stft import mel_filterbank

SILENCE_DB = -40.0  # a frame this far below full scale (RMS) counts as silence
EPS = 1e-10


@dataclass(frozen=True)
class MelOptions:
    """How spectrograms are taken: window and hop in samples, mel bands, and the top frequency (None: Nyquist)."""

    n_fft: int = 256
    hop: int = 128
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None


def _frames(clips: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Overlapping frames ``(N, F, n_fft)`` of clips ``(N, T)`` (zero-padded to a whole number of hops)."""
    x = np.asarray(clips, dtype=np.float32)
    n, t = x.shape
    count = 1 + max(0, -(-(t - n_fft) // hop))
    x = np.pad(x, ((0, 0), (0, max(0, (count - 1) * hop + n_fft - t))))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    return x[:, idx]


def power_spectrogram(clips: np.ndarray, n_fft: int = 256, hop: int = 128) -> np.ndarray:
    """``|STFT|^2`` with a Hann window, ``(N, frames, n_fft // 2 + 1)``."""
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    return np.abs(np.fft.rfft(_frames(clips, n_fft, hop) * window, axis=-1)) ** 2


def log_mel(clips: np.ndarray, sample_rate: int, options: MelOptions = MelOptions()) -> np.ndarray:
    """Log-mel spectrograms ``(N, frames, n_mels)`` (natural log of power, floored at 1e-10)."""
    power = power_spectrogram(clips, options.n_fft, options.hop)
    bank = mel_filterbank(sample_rate, options.n_fft, options.n_mels, options.fmin, options.fmax)
    return np.log(power @ bank.T + EPS).astype(np.float32)


def mel_statistics(clips: np.ndarray, sample_rate: int, options: MelOptions = MelOptions()) -> np.ndarray:
    """Per clip, the mean and standard deviation over time of each log-mel band: ``(N, 2 * n_mels)``."""
    spec = log_mel(clips, sample_rate, options)
    return np.concatenate([spec.mean(axis=1), spec.std(axis=1)], axis=1).astype(np.float64)


def spectral_shape(clips: np.ndarray, sample_rate: int, n_fft: int = 256, hop: int = 128) -> dict[str, np.ndarray]:
    """Per clip: ``centroid`` and ``bandwidth`` (Hz, power-weighted over its non-silent frames) and ``silence`` ratio."""
    frames = _frames(clips, n_fft, hop)
    rms_db = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=-1) + EPS)  # (N, F)
    loud = rms_db > SILENCE_DB
    power = power_spectrogram(clips, n_fft, hop).astype(np.float64)  # (N, F, B)
    freqs = np.linspace(0, sample_rate / 2, power.shape[-1])
    weights = power * loud[..., None]
    total = weights.sum(axis=(1, 2)) + EPS
    centroid = (weights * freqs).sum(axis=(1, 2)) / total
    bandwidth = np.sqrt((weights * (freqs[None, None, :] - centroid[:, None, None]) ** 2).sum(axis=(1, 2)) / total)
    return {"centroid": centroid, "bandwidth": bandwidth, "silence": 1.0 - loud.mean(axis=1)}
