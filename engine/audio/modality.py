"""The audio modality, as the registry knows it."""
from engine.core.registry import Modality

MODALITY = Modality(
    name="audio",
    synthesizer="engine.audio.synthesizer:AudioSynthesizer",
    models={
        "wavegan": "engine.audio.models.wavegan:WaveGANModel",
        "diffwave": "engine.audio.models.diffwave:DiffWaveModel",
        "specdiff": "engine.audio.models.spec_diffusion:SpecDiffusionModel",
    },
    formats=("zip", "parquet", "wav"),
    unit="clip",
    evaluator="engine.audio.metrics:evaluate_audio",
    description="audio: WaveGAN and a small DiffWave on raw waveforms, a spectrogram diffusion model (all class-conditional); WAV in and out",
)
