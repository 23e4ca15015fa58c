"""The reversible audio preprocessor: recordings <-> fixed-length waveforms in [-1, 1] with a label slot.

Models train on a dict of two equal-length arrays, ``{"audio": float32 (N, T),
"label": int64 (N,)}`` (``-1`` for an unlabelled clip), which the training
loop shards as it is; :class:`AudioLayout` says how long a clip is, at which
rate, and which classes the labels index. The waveforms are the recordings
times one gain fitted on the training set (``normalize="global"``: the
loudest sample at 0.95, so quiet recordings use the tanh output's range and
decoding divides it back out), or left as they are (``"none"``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.errors import InvalidDataError, NotFittedError
from engine.audio.io import AudioSet, read_audio
from engine.core.labels import label_codes

NORMALIZATIONS = ("global", "none")
PEAK = 0.95  # the loudest training sample after the global gain: headroom below tanh's saturation


@dataclass(frozen=True)
class AudioLayout:
    """Shape of the encoded clips: ``num_samples`` samples at ``sample_rate`` Hz, and the class names."""

    num_samples: int
    sample_rate: int
    class_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return {"num_samples": self.num_samples, "sample_rate": self.sample_rate, "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AudioLayout:
        return cls(int(d["num_samples"]), int(d["sample_rate"]), tuple(str(c) for c in d.get("class_names") or ()))


def num_samples_for(sample_rate: int, duration: float) -> int:
    """Samples in ``duration`` seconds at ``sample_rate`` (rounded to the nearest)."""
    return max(1, int(round(sample_rate * duration)))


class AudioPreprocessor:
    """Reads recordings at one rate and length, fits a gain, encodes and decodes clips.

    Args:
        sample_rate: the models' rate, Hz.
        duration: seconds per clip (longer recordings are cropped, shorter padded with silence).
        labels_from: where labels come from (see :func:`engine.audio.io.read_audio`).
        normalize: ``"global"`` (one gain for the whole set) or ``"none"``.
    """

    def __init__(self, sample_rate: int, duration: float, *, labels_from: str | None = None, normalize: str = "global"):
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not 100 <= sample_rate <= 384_000:
            raise InvalidDataError(f"The 'sample_rate' parameter must be an integer in 100..384000 (Hz). Got {sample_rate!r} instead.")
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 < duration <= 60:
            raise InvalidDataError(f"The 'duration' parameter must be a number of seconds in (0, 60]. Got {duration!r} instead.")
        if num_samples_for(sample_rate, duration) < 64:
            raise InvalidDataError(
                f"A clip of {duration} s at {sample_rate} Hz has {num_samples_for(sample_rate, duration)} samples; at least 64 are needed."
            )
        if normalize not in NORMALIZATIONS:
            raise InvalidDataError(f"The 'normalize' parameter must be one of {', '.join(map(repr, NORMALIZATIONS))}. Got {normalize!r} instead.")
        self.sample_rate = int(sample_rate)
        self.duration = float(duration)
        self.labels_from = labels_from
        self.normalize = normalize
        self.gain_: float | None = None
        self.layout_: AudioLayout | None = None

    @property
    def num_samples(self) -> int:
        return num_samples_for(self.sample_rate, self.duration)

    def prepare(self, source: Any, labels: Any = None) -> AudioSet:
        """Read any accepted source at this preprocessor's rate and length."""
        return read_audio(source, labels, sample_rate=self.sample_rate, num_samples=self.num_samples, labels_from=self.labels_from)

    def fit(self, audio_set: AudioSet) -> AudioPreprocessor:
        peak = float(np.max(np.abs(audio_set.clips))) if len(audio_set) else 0.0
        if peak == 0.0:
            raise InvalidDataError("Every training clip is silent (all samples are 0); there is nothing to learn.")
        self.gain_ = PEAK / peak if self.normalize == "global" else 1.0
        names = tuple(audio_set.class_names or ()) if audio_set.labels is not None else ()
        self.layout_ = AudioLayout(self.num_samples, self.sample_rate, names)
        return self

    @property
    def layout(self) -> AudioLayout:
        if self.layout_ is None or self.gain_ is None:
            raise NotFittedError("The audio preprocessor is not fitted; call fit() first.")
        return self.layout_

    def transform(self, audio_set: AudioSet) -> dict[str, np.ndarray]:
        """``{"audio": (N, T) float32 in [-1, 1], "label": (N,) int64}`` (labels -1 when unlabelled)."""
        layout = self.layout
        if audio_set.clips.shape[1:] != (layout.num_samples,) or audio_set.sample_rate != layout.sample_rate:
            raise InvalidDataError(
                f"Clips of {audio_set.clips.shape[1:]} samples at {audio_set.sample_rate} Hz do not match the fitted "
                f"{layout.num_samples} samples at {layout.sample_rate} Hz."
            )
        audio = np.clip(audio_set.clips * np.float32(self.gain_), -1.0, 1.0).astype(np.float32)
        if audio_set.labels is None:
            labels = np.full(len(audio), -1, dtype=np.int64)
        else:
            labels = self.label_codes(audio_set.label_names()) if layout.class_names else np.full(len(audio), -1, np.int64)
        return {"audio": audio, "label": labels}

    def inverse_transform(self, encoded: np.ndarray) -> np.ndarray:
        """Generated waveforms ``(N, T)`` back at the recordings' level, float32 in [-1, 1]."""
        self.layout  # noqa: B018 - raises when not fitted
        return np.clip(np.asarray(encoded, dtype=np.float32) / np.float32(self.gain_), -1.0, 1.0)

    def label_codes(self, labels: Sequence[Any]) -> np.ndarray:
        """Class indices for labels given as names (``"7"``) or indices (``7``)."""
        return label_codes(labels, self.layout.class_names)

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "duration": self.duration, "labels_from": self.labels_from,
                "normalize": self.normalize, "gain": self.gain_, "layout": self.layout.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AudioPreprocessor:
        pre = cls(int(d["sample_rate"]), float(d["duration"]), labels_from=d.get("labels_from"), normalize=d.get("normalize", "global"))
        pre.gain_ = float(d["gain"])
        pre.layout_ = AudioLayout.from_dict(d["layout"])
        return pre
