"""The requirement spec: every field validated, YAML/JSON/dict loading, the published JSON Schema up to date."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.requirements.spec import (
    InvalidSpecError,
    RangeCondition,
    RequirementSpec,
    SetCondition,
    check_privacy_supported,
    load_spec,
    spec_json_schema,
)

REPO = Path(__file__).resolve().parents[1]

FULL = {
    "data": "claims.csv",
    "modality": "table",
    "model": "gaussian_copula",
    "hyperparameters": {"max_rows": 1000},
    "epochs": 3,
    "num_rows": 10000,
    "conditions": {"age": {"between": [18, 90]}, "region": {"in": ["north", "south"]}, "kind": "a",
                   "score": {">=": 0.5, "<": 2}, "tier": {"not_in": ["basic"]}},
    "mixture": {"fraud": {1: 0.2, 0: 0.8}},
    "constraints": [
        {"type": "bounds", "column": "limit", "low": 0, "high": 10},
        {"type": "integer", "column": "age"},
        {"type": "inequality", "low": "start", "high": "end"},
        {"type": "fixed_combinations", "columns": ["city", "region"]},
        {"type": "conditional_bounds", "where": {"tier": "premium"}, "column": "limit", "low": 5000},
    ],
    "anonymize": ["name", "email"],
    "seed": 7,
    "output": {"path": "out/rows", "format": "parquet", "shards": 4},
    "evaluation": {"enabled": True, "target": "fraud", "per_class": "fraud"},
}


def test_every_field_is_read():
    spec = load_spec(FULL)
    assert spec.model == "gaussian_copula" and spec.modality == "table" and spec.num_rows == 10000 and spec.seed == 7
    assert spec.hyperparameters == {"max_rows": 1000} and spec.epochs == 3
    assert isinstance(spec.conditions["age"], RangeCondition) and spec.conditions["age"].between == (18, 90)
    assert isinstance(spec.conditions["region"], SetCondition) and spec.conditions["region"].in_ == ["north", "south"]
    assert spec.conditions["tier"].not_in == ["basic"] and spec.conditions["kind"] == "a"
    assert spec.engine_conditions() == {"age": {"between": [18, 90]}, "kind": "a", "score": {">=": 0.5, "<": 2}}
    assert set(spec.set_conditions()) == {"region", "tier"}
    assert spec.mixture == {"fraud": {"1": 0.2, "0": 0.8}}
    assert [c.type for c in spec.constraints] == ["bounds", "integer", "inequality", "fixed_combinations", "conditional_bounds"]
    assert spec.anonymize == ["name", "email"] and spec.output.shards == 4 and spec.evaluation.target == "fraud"
    # The dict form round-trips through validation unchanged.
    assert load_spec(spec.to_dict()) == spec
    jsonschema.validate(spec.to_dict(), spec_json_schema())


def test_yaml_and_json_files_and_text(tmp_path):
    (tmp_path / "s.yaml").write_text(load_spec(FULL).to_yaml())
    (tmp_path / "s.json").write_text(json.dumps(FULL))
    from_yaml, from_json = load_spec(tmp_path / "s.yaml"), load_spec(str(tmp_path / "s.json"))
    assert from_yaml == from_json
    # Relative paths in a file are the file's folder's.
    assert from_yaml.data == str(tmp_path / "claims.csv") and from_yaml.output.path == str(tmp_path / "out/rows")
    assert load_spec("data: a.csv\nnum_rows: 5\n").num_rows == 5


@pytest.mark.parametrize(
    "change, words",
    [
        ({"num_rows": 0}, "num_rows"),
        ({"num_rows": "many"}, "num_rows"),
        ({"colour": "red"}, "colour"),
        ({"model_path": "m/"}, "not both"),
        ({"data": None}, "give 'data'"),
        ({"mixture": {"fraud": {"1": 1.5}}}, "outside [0, 1]"),
        ({"mixture": {"fraud": {"1": 0.7, "0": 0.7}}}, "more than 1"),
        ({"mixture": {"age": {"1": 0.5}}}, "both a condition and a mixture"),
        ({"conditions": {"age": {"between": [1]}}}, "conditions.age"),
        ({"conditions": {"age": {"near": 3}}}, "conditions.age"),
        ({"conditions": {"r": {"in": []}}}, "conditions.r"),
        ({"constraints": [{"type": "sorted", "column": "a"}]}, "constraints.0"),
        ({"constraints": [{"type": "bounds"}]}, "column"),
        ({"constraints": [{"type": "fixed_combinations", "columns": ["a"]}]}, "columns"),
        ({"privacy": {"epsilon": -1}}, "privacy.epsilon"),
        ({"seed": -1}, "seed"),
        ({"output": {"path": "x", "shards": 0}}, "output.shards"),
        ({"evaluation": {"enabled": "maybe"}}, "evaluation.enabled"),
        ({"anonymize": "name"}, "anonymize"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_fields_are_named(change, words):
    with pytest.raises(InvalidSpecError, match="invalid") as err:
        load_spec({**FULL, **change})
    assert words in str(err.value)


def test_bad_documents():
    with pytest.raises(InvalidSpecError, match="does not exist"):
        load_spec("nowhere.yaml")
    with pytest.raises(InvalidSpecError, match="must be a mapping"):
        load_spec("- a\n- b\n")


def test_the_constraint_kinds_are_the_engines():
    from engine.tabular.requirements.constraints import CONSTRAINT_TYPES

    schema = spec_json_schema()
    kinds = {d["properties"]["type"]["const"] for name, d in schema["$defs"].items() if name.endswith("Constraint")}
    assert kinds == set(CONSTRAINT_TYPES)


def test_privacy_is_refused_unless_the_model_is_private():
    from dataclasses import fields

    from engine.core.registry import get_model_class

    spec = load_spec({**FULL, "privacy": {"epsilon": 1.0, "delta": 1e-5}})
    assert spec.privacy.epsilon == 1.0 and spec.privacy.delta == 1e-5
    # The copula's config has no epsilon: a budget for it is refused, not silently ignored.
    assert not any(f.name == "epsilon" for f in fields(get_model_class("gaussian_copula").config_class))
    with pytest.raises(InvalidSpecError, match="'gaussian_copula' is not trained with differential privacy"):
        check_privacy_supported(spec)
    check_privacy_supported(load_spec(FULL))  # no budget: nothing to refuse


def test_published_json_schema_is_up_to_date():
    published = json.loads((REPO / "docs" / "requirement-spec.schema.json").read_text())
    assert published == spec_json_schema(), (
        "docs/requirement-spec.schema.json is stale: regenerate it with "
        "python -c \"from engine.requirements.spec import write_json_schema; write_json_schema('docs/requirement-spec.schema.json')\""
    )
    jsonschema.Draft202012Validator.check_schema(published)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"num_rows": -3, "data": "x"}, published)


def test_the_shipped_example_spec_is_valid():
    spec = load_spec(REPO / "jobs" / "configs" / "generate_adult.yaml")
    assert Path(spec.data).is_file() and spec.mixture == {"income": {">50K": 0.5, "<=50K": 0.5}}
