"""cluster.yaml is a valid Ray cluster-launcher config (checked against the schema shipped inside ray)."""
from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


def _schema() -> dict:
    return json.loads(resources.files("ray.autoscaler").joinpath("ray-schema.json").read_text())


def test_cluster_yaml_matches_ray_schema():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    jsonschema.validate(config, _schema())
    nodes = config["available_node_types"]
    assert nodes[config["head_node_type"]]["resources"]["GPU"] == 0
    gpu = [n for n in nodes.values() if n["resources"].get("GPU", 0) > 0]
    assert gpu and all(n["max_workers"] > n.get("min_workers", 0) for n in gpu)  # an autoscaling GPU group
    assert any("pip install" in c and "synth-engine" in c for c in config["setup_commands"])


def test_cluster_yaml_passes_ray_launcher_validation():
    # What `ray up` itself runs: provider defaults merged in, then the full validation.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(yaml.safe_load(CLUSTER_YAML.read_text())))


def test_schema_check_rejects_a_broken_config():
    # The validation above must be able to fail: a node type without resources is invalid.
    config = copy.deepcopy(yaml.safe_load(CLUSTER_YAML.read_text()))
    del config["available_node_types"]["gpu_worker"]["resources"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, _schema())
