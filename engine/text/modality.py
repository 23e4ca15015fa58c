"""The text modality, as the registry knows it."""
from engine.core.registry import Modality

MODALITY = Modality(
    name="text",
    synthesizer="engine.text.synthesizer:TextSynthesizer",
    models={"gpt2": "engine.text.models.causal_lm:CausalLMModel"},
    formats=("jsonl", "json", "parquet", "csv"),
    unit="text",
    evaluator="engine.text.metrics:evaluate_texts",
    description="text: causal language models (GPT-2 from scratch or a fine-tuned checkpoint), label-conditional, filtered",
)
