"""The requirement spec: one document saying what data set to make and how.

A spec is YAML, JSON or a Python dict, validated by the pydantic model
:class:`RequirementSpec` (its JSON Schema is published as
``docs/requirement-spec.schema.json``). It names where the model comes from
(source data to train on, or a saved model), how many samples to make, the
conditions every sample meets, a mixture of a column's values, constraints,
columns to anonymize, a privacy budget, the seed, the output and the
evaluation. ``engine.generate(spec)`` runs it; ``engine.interpret(prompt, ...)``
writes one from plain language.

Example (YAML)::

    data: claims.csv
    model: gaussian_copula
    num_rows: 10000
    conditions: {age: {between: [18, 90]}, region: {in: [north, south]}}
    mixture: {fraud: {1: 0.2, 0: 0.8}}
    constraints: [{type: bounds, column: credit_limit, low: 0}]
    seed: 7
    output: {path: out/claims.parquet}
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.core.errors import SynthError

Scalar = Union[bool, int, float, str]


class InvalidSpecError(SynthError, ValueError):
    """A requirement spec is malformed, or asks for what the engine cannot do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ------------------------------------------------------------------ conditions
class RangeCondition(_Strict):
    """A numeric or datetime range: ``{between: [low, high]}`` and/or one-sided bounds."""

    between: tuple[Scalar, Scalar] | None = Field(None, description="closed range [low, high]")
    ge: Scalar | None = Field(None, alias=">=", description="at least")
    gt: Scalar | None = Field(None, alias=">", description="strictly above")
    le: Scalar | None = Field(None, alias="<=", description="at most")
    lt: Scalar | None = Field(None, alias="<", description="strictly below")

    @model_validator(mode="after")
    def _not_empty(self) -> "RangeCondition":
        if all(v is None for v in (self.between, self.ge, self.gt, self.le, self.lt)):
            raise ValueError("a range condition needs 'between', '>=', '>', '<=' or '<'")
        return self

    def as_engine(self) -> dict[str, Any]:
        """The mapping the front doors' ``conditions=`` take."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class SetCondition(_Strict):
    """One of several values (``in``), or any value but these (``not_in``)."""

    in_: list[Scalar] | None = Field(None, alias="in", min_length=1, description="the value is one of these")
    not_in: list[Scalar] | None = Field(None, min_length=1, description="the value is none of these")

    @model_validator(mode="after")
    def _one(self) -> "SetCondition":
        if (self.in_ is None) == (self.not_in is None):
            raise ValueError("a set condition takes exactly one of 'in' and 'not_in'")
        return self


Condition = Union[Scalar, RangeCondition, SetCondition]


# ----------------------------------------------------------------- constraints
# One model per constraint kind the engine supports (engine/tabular/requirements/constraints.py);
# tests/test_requirement_spec.py checks that the two lists agree.
class BoundsConstraint(_Strict):
    """``low <= column <= high``."""

    type: Literal["bounds"]
    column: str
    low: float | None = None
    high: float | None = None


class IntegerConstraint(_Strict):
    """The column holds whole numbers."""

    type: Literal["integer"]
    column: str


class InequalityConstraint(_Strict):
    """``low <= high`` (two columns) on every row."""

    type: Literal["inequality"]
    low: str
    high: str


class FixedCombinationsConstraint(_Strict):
    """Only combinations of these categorical columns seen in training appear."""

    type: Literal["fixed_combinations"]
    columns: list[str] = Field(min_length=2)


class ConditionalBoundsConstraint(_Strict):
    """A rule: every row matching ``where`` has ``low <= column <= high`` ("every premium customer has a limit above 5000")."""

    type: Literal["conditional_bounds"]
    where: dict[str, Scalar] = Field(min_length=1)
    column: str
    low: float | None = None
    high: float | None = None


Constraint = Annotated[
    Union[BoundsConstraint, IntegerConstraint, InequalityConstraint, FixedCombinationsConstraint, ConditionalBoundsConstraint],
    Field(discriminator="type"),
]


# ------------------------------------------------------------ other sections
class PrivacyBudget(_Strict):
    """Differential privacy: the (epsilon, delta) budget of training."""

    epsilon: float = Field(gt=0)
    delta: float | None = Field(None, gt=0, lt=1)


class OutputSpec(_Strict):
    """Where the samples go."""

    path: str = Field(description="a file (one output) or a folder (shards > 1, or formats that write folders)")
    format: str | None = Field(None, description="parquet, csv, json, ... (default: by the path's extension, or parquet)")
    shards: int = Field(1, ge=1, description="Parquet files the samples are split into (a folder read as one data set)")


class EvaluationSpec(_Strict):
    """The evaluation run on the output against the source data."""

    enabled: bool = True
    full_report: bool = Field(True, description="the modality's whole report (realism and privacy too, slower); false: per-class fidelity only")
    target: str | None = Field(None, description="column predicted for machine-learning efficacy (tables)")
    per_class: str | None = Field(None, description="column whose classes get their own fidelity score (default: the mixture's)")


class RequirementSpec(_Strict):
    """What data set to make, and how: read by ``engine.generate``, ``synth generate`` and ``POST /v1/generate``."""

    data: str | None = Field(None, description="source data to train on (a file or folder the modality reads)")
    model_path: str | None = Field(None, description="a saved model to sample from instead of training")
    modality: str | None = Field(None, description="the modality (default: the model's)")
    model: str | None = Field(None, description="model name (default: the modality's front-door default; for tables "
                                   "chosen by the data's size, as TabularSynthesizer() chooses)")
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="the model's config values")
    epochs: int | None = Field(None, ge=1)
    num_rows: int = Field(ge=1, description="number of rows / samples / sequences")
    conditions: dict[str, Condition] = Field(default_factory=dict)
    mixture: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="column -> {value: share}; shares in [0, 1] summing to at most 1"
    )
    constraints: list[Constraint] = Field(default_factory=list)
    anonymize: list[str] = Field(default_factory=list, description="columns whose values are replaced by pseudonyms")
    privacy: PrivacyBudget | None = None
    seed: int = Field(0, ge=0)
    output: OutputSpec | None = None
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)

    @field_validator("mixture", mode="before")
    @classmethod
    def _mixture_keys_as_text(cls, value: Any) -> Any:
        # YAML reads `{fraud: {1: 0.2}}` with an int key; values are matched to the data later, as text.
        if isinstance(value, Mapping):
            return {c: ({str(k): v for k, v in shares.items()} if isinstance(shares, Mapping) else shares) for c, shares in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "RequirementSpec":
        if (self.data is None) == (self.model_path is None) and self.model_path is not None:
            raise ValueError("give 'data' (to train on) or 'model_path' (a saved model), not both")
        if self.data is None and self.model_path is None:
            raise ValueError("give 'data' (a source to train on) or 'model_path' (a saved model)")
        for column, shares in self.mixture.items():
            if not shares:
                raise ValueError(f"the mixture of {column!r} lists no value")
            bad = {k: v for k, v in shares.items() if not 0 <= v <= 1}
            if bad:
                raise ValueError(f"the mixture of {column!r} has shares outside [0, 1]: {bad}")
            if sum(shares.values()) > 1 + 1e-9:
                raise ValueError(f"the mixture of {column!r} sums to {sum(shares.values()):g}, more than 1")
            if column in self.conditions:
                raise ValueError(f"column {column!r} has both a condition and a mixture; give one")
        return self

    # -------------------------------------------------------------- helpers
    def engine_conditions(self) -> dict[str, Any]:
        """The conditions a front door takes directly (values and ranges; sets are run as mixtures)."""
        out: dict[str, Any] = {}
        for column, cond in self.conditions.items():
            if isinstance(cond, RangeCondition):
                out[column] = cond.as_engine()
            elif not isinstance(cond, SetCondition):
                out[column] = cond
        return out

    def set_conditions(self) -> dict[str, SetCondition]:
        return {c: v for c, v in self.conditions.items() if isinstance(v, SetCondition)}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON data (aliases such as ``>=`` and ``in`` as written in files; defaults left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json") | {"num_rows": self.num_rows}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_spec(source: RequirementSpec | Mapping[str, Any] | str | os.PathLike[str]) -> RequirementSpec:
    """A validated spec from a spec, a dict, a YAML/JSON file path, or YAML/JSON text.

    Relative ``data``, ``model_path`` and ``output.path`` in a file are read from the file's folder.
    """
    if isinstance(source, RequirementSpec):
        return source
    where = "the requirement spec"
    base: Path | None = None
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        path = Path(text)
        if "\n" not in text and path.suffix.lower() in (".yaml", ".yml", ".json"):
            if not path.is_file():
                raise InvalidSpecError(f"The requirement spec file {text!r} does not exist.")
            where, base, text = f"the requirement spec {text!r}", path.resolve().parent, path.read_text()
        import yaml

        try:
            source = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidSpecError(f"{where} is not valid YAML or JSON: {exc}") from None
    if isinstance(source, Mapping) and "dataset_card_version" in source and "spec" in source:
        source, base = source["spec"], None  # a data card: the spec it was made from (its paths are already resolved)
    if not isinstance(source, Mapping):
        raise InvalidSpecError(f"{where} must be a mapping of fields (num_rows, data, ...); got {type(source).__name__}.")
    try:
        spec = RequirementSpec.model_validate(dict(source))
    except ValidationError as exc:
        raise InvalidSpecError(f"{where} is invalid:\n{_errors(exc)}") from None
    if base is not None:
        spec = _relative_to(spec, base)
    return spec


def _relative_to(spec: RequirementSpec, base: Path) -> RequirementSpec:
    def fix(p: str | None) -> str | None:
        if p is None or "://" in p or os.path.isabs(p):
            return p
        return str(base / p)

    update: dict[str, Any] = {"data": fix(spec.data), "model_path": fix(spec.model_path)}
    if spec.output is not None:
        update["output"] = spec.output.model_copy(update={"path": fix(spec.output.path)})
    return spec.model_copy(update=update)


def _errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = f" Got {err['input']!r}." if "input" in err and not isinstance(err["input"], Mapping) else ""
        lines.append(f"  - {loc}: {err['msg']}.{got}")
    return "\n".join(lines)


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`RequirementSpec`, as published in docs/requirement-spec.schema.json."""
    schema = RequirementSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Synthetic data requirement spec"
    return schema


def write_json_schema(path: str | os.PathLike[str]) -> None:
    Path(path).write_text(json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n")


def check_privacy_supported(spec: RequirementSpec) -> None:
    """Refuse a privacy budget unless the model is trained with one (its config has an ``epsilon`` field).

    With no model named, any registered model with such a config will do (the
    scan imports every model class, so it is left for that case).
    """
    if spec.privacy is None:
        return
    from engine.core.registry import REGISTRY, get_model_class

    if spec.model is not None:
        if not _has_epsilon(get_model_class(spec.model)):
            raise InvalidSpecError(
                f"The spec asks for a privacy budget (epsilon={spec.privacy.epsilon}), but the model {spec.model!r} is not "
                "trained with differential privacy (its config has no 'epsilon'); remove 'privacy' or name a private model."
            )
        return
    private = []
    for modality in REGISTRY.all().values():
        for name in modality.models:
            try:
                if _has_epsilon(modality.model_class(name)):
                    private.append(name)
            except SynthError:
                continue
    if not private:
        raise InvalidSpecError(
            f"The spec asks for a privacy budget (epsilon={spec.privacy.epsilon}), but no model of this engine is trained "
            "with differential privacy yet; remove 'privacy' or use a differentially private model when one is installed."
        )
    raise InvalidSpecError(
        f"The spec asks for a privacy budget: name the model that spends it ('model': one of {', '.join(map(repr, private))})."
    )


def _has_epsilon(model_class: type) -> bool:
    from dataclasses import fields, is_dataclass

    config = getattr(model_class, "config_class", None)
    return config is not None and is_dataclass(config) and any(f.name == "epsilon" for f in fields(config))
