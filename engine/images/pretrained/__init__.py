"""Pretrained text-to-image diffusion pipelines: a local folder, a well-known short name or a hub id.

* :mod:`~engine.images.pretrained.source`: where a pipeline comes from (folder,
  short name, hub id; the local cache first) and loading it.
* :mod:`~engine.images.pretrained.pipeline`: :class:`PretrainedDiffusion`
  (load, ``generate``, ``generate_batch``).
* :mod:`~engine.images.pretrained.prompts`: prompt checks, per-image seeding,
  and :func:`generate_to_parquet` over a Ray actor pool.

Names are imported on first use, so that ``import engine.images.pretrained.source``
does not load the pipeline machinery.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC: dict[str, str] = {
    "PretrainedDiffusion": "engine.images.pretrained.pipeline:PretrainedDiffusion",
    "GeneratedImages": "engine.images.pretrained.pipeline:GeneratedImages",
    "PretrainedModelError": "engine.images.pretrained.source:PretrainedModelError",
    "KNOWN_PIPELINES": "engine.images.pretrained.source:KNOWN_PIPELINES",
    "KnownPipeline": "engine.images.pretrained.source:KnownPipeline",
    "resolve_source": "engine.images.pretrained.source:resolve_source",
    "generate_to_parquet": "engine.images.pretrained.prompts:generate_to_parquet",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name].split(":")
    except KeyError:
        raise AttributeError(f"module 'engine.images.pretrained' has no attribute {name!r}") from None
    return getattr(import_module(module), attribute)
