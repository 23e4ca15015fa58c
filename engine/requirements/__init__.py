"""Requirements: the spec of a data set to make, the plain-language interpreter, and the run that makes it.

- ``spec.py``: :class:`RequirementSpec` (YAML/JSON/dict, with a published JSON Schema);
- ``interpreter.py`` and ``grammar.lark``: ``interpret(prompt, schema)`` -> a spec;
- ``run.py``: ``generate(spec)``: train or load, sample, evaluate, write, with a data card.

Modality-general: the modality's front door does the sampling (its conditions
and conditional sampling); this package never imports a modality.
"""
from engine.requirements.spec import InvalidSpecError, RequirementSpec, load_spec

__all__ = ["InvalidSpecError", "RequirementSpec", "load_spec"]
