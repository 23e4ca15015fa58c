"""A plugin modality the Serve app has never heard of: short sine tones as WAV bytes, by class.

``tests/test_serve.py`` serves it through ``AppArgs.modalities`` to check that
nothing in ``serve_apps`` depends on the built-in modalities. It is as small as
a modality can be and still be saved, loaded and sampled by the engine's front
door: one "model" whose state is a pitch per class.
"""
from __future__ import annotations

import io
import json
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from engine.core.errors import InvalidDataError
from engine.core.registry import Modality
from engine.core.synthesizer import Synthesizer, check_count
from engine.store.artifact import Artifact


@dataclass
class ToneConfig:
    sample_rate: int = 8000
    duration_ms: int = 10


class ToneModel:
    """Only a config: the registry and the front door ask a model class for nothing else here."""

    config_class = ToneConfig


def _wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


class ToneSynthesizer(Synthesizer):
    """Tones of a pitch per class, with a random loudness; ``{"label": class}`` asks for one class."""

    modality = "tone"

    def __init__(self, model: str = "tone", **kwargs: Any):
        super().__init__(model, **kwargs)
        self.pitches_: dict[str, float] | None = None

    def fit(self, pitches: Mapping[str, float]) -> ToneSynthesizer:
        self.pitches_ = {str(k): float(v) for k, v in pitches.items()}
        return self

    def _require_fitted(self) -> dict[str, float]:
        if self.pitches_ is None:
            raise self._not_fitted()
        return self.pitches_

    def coerce_conditions(self, conditions: Any) -> Any:
        return conditions.get("label") if isinstance(conditions, Mapping) and list(conditions) == ["label"] else conditions

    def parse_conditions(self, conditions: Any) -> int | None:
        classes = list(self._require_fitted())
        if conditions is None:
            return None
        if isinstance(conditions, str) and conditions in classes:
            return classes.index(conditions)
        raise InvalidDataError(f"A tone model takes one class as its condition; got {conditions!r}; the classes are {classes}.")

    def sample_table(self, num_rows: int, *, conditions: Any = None, seed: int, stream: int = 0, row_offset: int = 0) -> pa.Table:
        pitches = self._require_fitted()
        check_count(num_rows, "num_rows")
        code = self.parse_conditions(conditions)
        rng = np.random.default_rng([seed, stream])
        codes = np.full(num_rows, code) if code is not None else rng.integers(len(pitches), size=num_rows)
        loudness = rng.uniform(0.2, 0.9, size=num_rows)
        config = self._config_object()
        t = np.arange(config.sample_rate * config.duration_ms // 1000) / config.sample_rate
        hz = np.array(list(pitches.values()))[codes]
        blobs = [_wav(a * 32767 * np.sin(2 * np.pi * f * t), config.sample_rate) for a, f in zip(loudness, hz)]
        audio = pa.StructArray.from_arrays(
            [pa.array(blobs, pa.binary()), pa.array([None] * num_rows, pa.string())], names=["bytes", "path"]
        )
        table = pa.table({"audio": audio, "label": pa.array(codes, pa.int64()), "loudness": loudness})
        features = {"audio": {"_type": "Audio"}, "label": {"_type": "ClassLabel", "names": list(pitches)}}
        return table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "classes": list(self._require_fitted())}

    def _artifact(self) -> Artifact:
        return Artifact(model=self.model, config={}, model_state={"pitches": self._require_fitted()})

    @classmethod
    def _from_artifact(cls, art: Artifact) -> ToneSynthesizer:
        synth = cls(art.model, model_config=art.config.get("model_config", {}), **art.config.get("scaling", {}))
        return synth.fit(art.model_state["pitches"])


MODALITY = Modality(
    name="tone",
    synthesizer=ToneSynthesizer,
    models={"tone": ToneModel},
    formats=("zip", "parquet"),
    unit="tone",
    description="test plugin: sine tones as WAV",
)
