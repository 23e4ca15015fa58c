"""A synthetic-data engine on Ray.

The public entry points are imported lazily so that ``import engine`` stays
cheap (the CLI's ``--help`` should not wait for torch and Ray to load)::

    from engine import TabularSynthesizer, QualityEvaluator
"""
from __future__ import annotations

from typing import Any

__all__ = ["QualityEvaluator", "TabularSynthesizer", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "TabularSynthesizer":
        from engine.synthesizer import TabularSynthesizer

        return TabularSynthesizer
    if name == "QualityEvaluator":
        from engine.evaluation import QualityEvaluator

        return QualityEvaluator
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
