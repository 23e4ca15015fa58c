"""The models by name: an explicit registry, no discovery by import side effect."""
from __future__ import annotations

from engine.errors import SynthError
from engine.models.base import TorchSynthModel
from engine.models.ctgan import CTGAN
from engine.models.tvae import TVAE


class UnknownModelError(SynthError, ValueError):
    """No model of that name."""


# Models trained by the engine's Ray Train loop.
TORCH_MODELS: dict[str, type[TorchSynthModel]] = {"ctgan": CTGAN, "tvae": TVAE}
# Models fitted directly, without the trainer.
DIRECT_MODELS = ("gaussian_copula",)
MODEL_NAMES: tuple[str, ...] = (*TORCH_MODELS, *DIRECT_MODELS)


def get_model_class(name: str) -> type[TorchSynthModel]:
    """The torch model class registered as ``name``."""
    try:
        return TORCH_MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown torch model {name!r}; the torch models are: {', '.join(map(repr, TORCH_MODELS))}."
        ) from None
