"""A synthetic-data engine on Ray.

The public entry points are imported lazily so that ``import engine`` stays
cheap (the CLI's ``--help`` should not wait for torch and Ray to load)::

    from engine import TabularSynthesizer, QualityEvaluator
    from engine import ImageSynthesizer, DCGAN, WGANGP, DDPM, StableDiffusionSynthesizer, save_dataset
    from engine import load_synthesizer, register_modality
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public name -> "module:attribute"; one class per name (engine.DCGAN is engine.images.synthesizer.DCGAN).
_PUBLIC: dict[str, str] = {
    "TabularSynthesizer": "engine.tabular.synthesizer:TabularSynthesizer",
    "ImageSynthesizer": "engine.images.synthesizer:ImageSynthesizer",
    "DCGAN": "engine.images.synthesizer:DCGAN",
    "WGANGP": "engine.images.synthesizer:WGANGP",
    "DDPM": "engine.images.synthesizer:DDPM",
    "StableDiffusionSynthesizer": "engine.images.synthesizer:StableDiffusionSynthesizer",
    "save_dataset": "engine.images.io:save_dataset",
    "TimeSeriesSynthesizer": "engine.timeseries.synthesizer:TimeSeriesSynthesizer",
    "TextSynthesizer": "engine.text.synthesizer:TextSynthesizer",
    "AudioSynthesizer": "engine.audio.synthesizer:AudioSynthesizer",
    "QualityEvaluator": "engine.evaluation.quality:QualityEvaluator",
    "Synthesizer": "engine.core.synthesizer:Synthesizer",
    "Modality": "engine.core.registry:Modality",
    "load_synthesizer": "engine.core.registry:load_synthesizer",
    "register_modality": "engine.core.registry:register_modality",
    "SynthError": "engine.core.errors:SynthError",
    "DPSynthesizer": "engine.privacy.synthesizer:DPSynthesizer",
    "RequirementSpec": "engine.requirements.spec:RequirementSpec",
    "interpret": "engine.requirements.interpreter:interpret",
    "generate": "engine.requirements.run:generate",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name].split(":")
    except KeyError:
        raise AttributeError(f"module 'engine' has no attribute {name!r}") from None
    return getattr(import_module(module), attribute)
