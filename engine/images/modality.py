"""The images modality, as the registry knows it."""
from engine.core.registry import Modality

MODALITY = Modality(
    name="image",
    synthesizer="engine.images.synthesizer:ImageSynthesizer",
    models={
        "dcgan": "engine.images.models.dcgan:DCGAN",
        "wgan_gp": "engine.images.models.wgan_gp:WGANGP",
        "ddpm": "engine.images.models.ddpm:DDPM",
    },
    formats=("zip", "parquet", "png"),
    unit="image",
    evaluator="engine.images.metrics.evaluator:evaluate_images",
    description="images: DCGAN, WGAN-GP, DDPM (class-conditional); pretrained text-to-image pipelines",
)
