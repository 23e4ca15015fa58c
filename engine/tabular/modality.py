"""The tables modality, as the registry knows it."""
from engine.core.registry import Modality

MODALITY = Modality(
    name="table",
    synthesizer="engine.tabular.synthesizer:TabularSynthesizer",
    models={
        "ctgan": "engine.tabular.models.ctgan:CTGAN",
        "tvae": "engine.tabular.models.tvae:TVAE",
        "gaussian_copula": "engine.tabular.models.gaussian_copula:GaussianCopula",
        "tabddpm": "engine.tabular.models.tabddpm:TabDDPM",
        "dp_ctgan": "engine.privacy.models.dp_ctgan:DPCTGAN",  # trained privately through engine.privacy.DPSynthesizer
        "dp_tvae": "engine.privacy.models.dp_tvae:DPTVAE",
    },
    formats=("json", "csv", "parquet"),
    unit="row",
    evaluator="engine.tabular.metrics.evaluator:evaluate_tables",
    description="tables: CTGAN, TVAE, TabDDPM (diffusion), Gaussian copula; conditions and constraints",
)
