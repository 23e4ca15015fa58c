"""Load any saved synthesizer, whatever its modality, from the model name in its manifest."""
from __future__ import annotations

import os
from typing import Any

from engine.models.registry import IMAGE_MODELS
from engine.store.artifact import read_model_name


def load_synthesizer(path: str | os.PathLike[str]) -> Any:
    """A ``TabularSynthesizer`` or an ``ImageSynthesizer``, as the model saved at ``path`` requires."""
    if read_model_name(path) in IMAGE_MODELS:
        from engine.image_synthesizer import ImageSynthesizer

        return ImageSynthesizer.load(path)
    from engine.synthesizer import TabularSynthesizer

    return TabularSynthesizer.load(path)
