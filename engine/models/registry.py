"""The models by name: an explicit registry, no discovery by import side effect.

Each entry names the module and class; the module is imported when the model is
first asked for, so a process that samples a CTGAN never imports diffusers
(seconds of start-up for every sampling actor and every CLI call).
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from engine.errors import SynthError

if TYPE_CHECKING:
    from engine.models.base import TorchSynthModel


class UnknownModelError(SynthError, ValueError):
    """No model of that name."""


# Every model trained by the engine's Ray Train loop, whatever its modality: name -> "module:Class".
TORCH_MODELS: dict[str, str] = {
    "ctgan": "engine.models.ctgan:CTGAN",
    "tvae": "engine.models.tvae:TVAE",
    "dcgan": "engine.models.dcgan:DCGAN",
    "wgan_gp": "engine.models.wgan_gp:WGANGP",
    "ddpm": "engine.models.ddpm:DDPM",
}
# Tabular models fitted directly, without the trainer.
DIRECT_MODELS = ("gaussian_copula",)
TABULAR_MODELS: tuple[str, ...] = ("ctgan", "tvae", *DIRECT_MODELS)
IMAGE_MODELS: tuple[str, ...] = ("dcgan", "wgan_gp", "ddpm")


def get_model_class(name: str) -> type[TorchSynthModel]:
    """The torch model class registered as ``name``."""
    try:
        module, cls = TORCH_MODELS[name].split(":")
    except KeyError:
        raise UnknownModelError(
            f"Unknown torch model {name!r}; the torch models are: {', '.join(map(repr, TORCH_MODELS))}."
        ) from None
    return getattr(import_module(module), cls)
