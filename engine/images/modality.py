"""The images modality, as the registry knows it."""
from engine.core.registry import Modality

MODALITY = Modality(
    name="image",
    synthesizer="engine.images.synthesizer:ImageSynthesizer",
    models={
        "dcgan": "engine.images.models.dcgan:DCGANModel",
        "wgan_gp": "engine.images.models.wgan_gp:WGANGPModel",
        "ddpm": "engine.images.models.ddpm:DDPMModel",
        "dp_dcgan": "engine.privacy.models.dp_dcgan:DPDCGAN",  # trained privately through engine.privacy.DPSynthesizer
    },
    formats=("zip", "parquet", "png"),
    unit="image",
    evaluator="engine.images.metrics.evaluator:evaluate_images",
    description="images: DCGAN, WGAN-GP, DDPM (class-conditional); pretrained text-to-image pipelines",
)
