"""The time-series modality, as the registry knows it."""
from engine.core.registry import Modality

MODALITY = Modality(
    name="timeseries",
    synthesizer="engine.timeseries.synthesizer:TimeSeriesSynthesizer",
    models={
        "diffusion_ts": "engine.timeseries.models.diffusion:SequenceDiffusionModel",
        "timegan": "engine.timeseries.models.timegan:TimeGANModel",
    },
    formats=("parquet", "csv", "json"),
    unit="sequence",
    evaluator="engine.timeseries.metrics.evaluator:evaluate_timeseries",
    description="time series: panels, wide arrays, windows of one series; diffusion and TimeGAN; labelled anomalies",
)
