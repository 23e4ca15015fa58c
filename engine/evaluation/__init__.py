"""Evaluation shared by every modality: distances on feature matrices, report helpers, and ``QualityEvaluator``.

``QualityEvaluator`` (``engine.evaluation.quality``) is the one front for every
modality; each modality's own metrics live in its package
(``engine.tabular.metrics``, ``engine.images.metrics``) and are imported only
when a method needs them::

    from engine.evaluation import QualityEvaluator
    report = QualityEvaluator().evaluate_tabular(real_data=real, synthetic_data=syn, target="income")
    fid = QualityEvaluator().calculate_fid(real_images=x_real, synthetic_images=x_generated)
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "QualityEvaluator": "engine.evaluation.quality:QualityEvaluator",
    "evaluate_tables": "engine.tabular.metrics.evaluator:evaluate_tables",
    "TabularReport": "engine.tabular.metrics.report:TabularReport",
    "quality_scores": "engine.tabular.metrics.fidelity:quality_scores",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name].split(":")
    except KeyError:
        raise AttributeError(f"module 'engine.evaluation' has no attribute {name!r}") from None
    return getattr(import_module(module), attribute)
