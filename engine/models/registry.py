"""The models by name: an explicit registry, no discovery by import side effect."""
from __future__ import annotations

from engine.errors import SynthError
from engine.models.base import TorchSynthModel
from engine.models.ctgan import CTGAN
from engine.models.dcgan import DCGAN
from engine.models.ddpm import DDPM
from engine.models.tvae import TVAE
from engine.models.wgan_gp import WGANGP


class UnknownModelError(SynthError, ValueError):
    """No model of that name."""


# Every model trained by the engine's Ray Train loop, whatever its modality.
TORCH_MODELS: dict[str, type[TorchSynthModel]] = {
    "ctgan": CTGAN, "tvae": TVAE, "dcgan": DCGAN, "wgan_gp": WGANGP, "ddpm": DDPM,
}
# Tabular models fitted directly, without the trainer.
DIRECT_MODELS = ("gaussian_copula",)
TABULAR_MODELS: tuple[str, ...] = ("ctgan", "tvae", *DIRECT_MODELS)
IMAGE_MODELS: tuple[str, ...] = ("dcgan", "wgan_gp", "ddpm")


def get_model_class(name: str) -> type[TorchSynthModel]:
    """The torch model class registered as ``name``."""
    try:
        return TORCH_MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown torch model {name!r}; the torch models are: {', '.join(map(repr, TORCH_MODELS))}."
        ) from None
