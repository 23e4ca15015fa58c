"""Labelled anomalies injected into generated sequences: spikes, level shifts, drifts and dropouts.

Each sequence is anomalous with probability ``rate`` (so the share of anomalous
sequences follows a binomial law); an anomalous sequence gets one anomaly, of a type
drawn from ``types``, on one numeric channel drawn at random, at a random position.
Magnitudes are in units of the channel's real standard deviation, with a random sign:

- ``spike``: one step moved by ``spike`` scales;
- ``level_shift``: from the start step to the end, moved by ``level_shift`` scales;
- ``drift``: from the start step to the end, a linear ramp reaching ``drift`` scales;
- ``dropout``: a segment of ``dropout_length`` steps (at least 1) reading ``dropout_value`` (0: a dead sensor).

Every affected step is labelled: ``is_anomaly`` (bool) and ``anomaly_type`` (the
type's name; ``""`` on normal steps), so that a detector can be trained on them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.core.errors import InvalidOptionError

ANOMALY_TYPES = ("spike", "level_shift", "drift", "dropout")


@dataclass(frozen=True)
class AnomalyConfig:
    """Which anomalies, and how large (magnitudes in units of each channel's real standard deviation)."""

    types: tuple[str, ...] = ANOMALY_TYPES
    spike: float = 5.0
    level_shift: float = 3.0
    drift: float = 4.0
    dropout_length: int = 5
    dropout_value: float = 0.0

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in ANOMALY_TYPES]
        if unknown or not self.types:
            raise InvalidOptionError(
                f"The anomaly 'types' must be a non-empty list of {', '.join(map(repr, ANOMALY_TYPES))}. Got {list(self.types)!r} instead."
            )
        if not isinstance(self.dropout_length, int) or self.dropout_length < 1:
            raise InvalidOptionError(f"The anomaly 'dropout_length' must be an integer >= 1. Got {self.dropout_length!r} instead.")

    @classmethod
    def from_options(cls, options: Mapping[str, object] | Sequence[str] | None) -> AnomalyConfig:
        """From a mapping of the fields above (or a list of types)."""
        if options is None:
            return cls()
        if isinstance(options, (list, tuple)):
            return cls(types=tuple(options))
        if not isinstance(options, Mapping):
            raise InvalidOptionError(f"anomaly options must be a mapping or a list of types; got {options!r}.")
        known = {"types", "spike", "level_shift", "drift", "dropout_length", "dropout_value"}
        bad = set(options) - known
        if bad:
            raise InvalidOptionError(f"Unknown anomaly option(s) {sorted(bad)}; the options are {sorted(known)}.")
        opts = dict(options)
        if "types" in opts:
            opts["types"] = tuple([opts["types"]] if isinstance(opts["types"], str) else opts["types"])
        return cls(**opts)  # type: ignore[arg-type]


def check_rate(rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) or not 0 <= float(rate) <= 1:
        raise InvalidOptionError(f"The 'anomaly_rate' parameter must be a number in [0, 1]. Got {rate!r} instead.")
    return float(rate)


def inject_anomalies(
    values: np.ndarray, lengths: np.ndarray, scales: np.ndarray, rate: float, rng: np.random.Generator,
    config: AnomalyConfig | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Anomalies in a copy of ``values`` ``(n, T, channels)`` (real units); returns it and the per-step labels.

    ``lengths`` bounds each sequence's real steps; ``scales`` is each channel's standard deviation.
    Labels: ``{"is_anomaly": bool (n, T), "anomaly_type": object (n, T)}``.
    """
    config = config or AnomalyConfig()
    rate = check_rate(rate)
    out = np.array(values, dtype=np.float64, copy=True)
    n, steps, channels = out.shape
    is_anomaly = np.zeros((n, steps), dtype=bool)
    kind = np.full((n, steps), "", dtype=object)
    if channels == 0 or rate == 0:
        return out, {"is_anomaly": is_anomaly, "anomaly_type": kind}
    scales = np.where(np.asarray(scales, dtype=np.float64) > 0, scales, 1.0)
    chosen = rng.random(n) < rate
    for i in np.flatnonzero(chosen):
        length = int(lengths[i])
        if length < 1:
            continue
        kind_i = str(rng.choice(config.types))
        c = int(rng.integers(channels))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        start = int(rng.integers(length))
        if kind_i == "spike":
            out[i, start, c] += sign * config.spike * scales[c]
            span = slice(start, start + 1)
        elif kind_i == "level_shift":
            start = int(rng.integers(max(1, length // 4), max(2, length))) if length > 1 else 0
            out[i, start:length, c] += sign * config.level_shift * scales[c]
            span = slice(start, length)
        elif kind_i == "drift":
            start = int(rng.integers(0, max(1, length - 1)))
            ramp = np.linspace(0, 1, length - start + 1)[1:]
            out[i, start:length, c] += sign * config.drift * scales[c] * ramp
            span = slice(start, length)
        else:  # dropout
            end = min(length, start + config.dropout_length)
            out[i, start:end, c] = config.dropout_value
            span = slice(start, end)
        is_anomaly[i, span] = True
        kind[i, span] = kind_i
    return out, {"is_anomaly": is_anomaly, "anomaly_type": kind}
