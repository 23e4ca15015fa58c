"""A synthetic-data engine on Ray.

The public entry points are imported lazily so that ``import engine`` stays
cheap (the CLI's ``--help`` should not wait for torch and Ray to load)::

    from engine import TabularSynthesizer, QualityEvaluator
    from engine import ImageSynthesizer, DCGAN, WGANGP, DDPM, save_dataset
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "DCGAN", "DDPM", "ImageSynthesizer", "QualityEvaluator", "TabularSynthesizer", "WGANGP",
    "load_synthesizer", "save_dataset", "__version__",
]
_IMAGE_NAMES = ("DCGAN", "DDPM", "ImageSynthesizer", "WGANGP")
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "TabularSynthesizer":
        from engine.synthesizer import TabularSynthesizer

        return TabularSynthesizer
    if name == "QualityEvaluator":
        from engine.evaluation import QualityEvaluator

        return QualityEvaluator
    if name in _IMAGE_NAMES:
        from engine import image_synthesizer

        return getattr(image_synthesizer, name)
    if name == "save_dataset":
        from engine.images.io import save_dataset

        return save_dataset
    if name == "load_synthesizer":
        from engine.loading import load_synthesizer

        return load_synthesizer
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
