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


KUBERAY = CLUSTER_YAML.parent / "kuberay"


def _entrypoint_commands(entrypoint: str) -> list[list[str]]:
    import shlex

    return [shlex.split(part) for part in entrypoint.split("&&")]


def test_rayjob_runs_the_train_then_sample_jobs_with_their_configs():
    import subprocess
    import sys

    from jobs.config import SampleJobConfig, TrainJobConfig, load_config

    doc = yaml.safe_load((KUBERAY / "rayjob.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    commands = _entrypoint_commands(doc["spec"]["entrypoint"])
    modules = [cmd[cmd.index("-m") + 1] for cmd in commands]
    assert modules == ["jobs.train", "jobs.sample"]
    image_root = "/home/ray/synth-engine/"  # where kuberay/Dockerfile copies the project
    assert f"COPY --chown=ray:users . {image_root.rstrip('/')}" in (KUBERAY / "Dockerfile").read_text()
    for cmd, module, cls in zip(commands, modules, (TrainJobConfig, SampleJobConfig)):
        help_run = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
        assert help_run.returncode == 0, help_run.stderr
        config = cmd[cmd.index("--config") + 1]
        assert config.startswith(image_root)
        cfg = load_config(cls, str(CLUSTER_YAML.parent / config[len(image_root):]), {})
        assert cfg.use_gpu is True if cls is SampleJobConfig else cfg.scaling.use_gpu is True  # the GPU group starts at zero
    _check_cluster_spec(doc["spec"]["rayClusterSpec"])


def _check_cluster_spec(spec: dict) -> None:
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    (gpu,) = spec["workerGroupSpecs"]
    assert gpu["maxReplicas"] > gpu["minReplicas"]  # autoscaling
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["enableInTreeAutoscaling"] is True
    import ray

    assert spec["rayVersion"] == ray.__version__
    assert f"rayproject/ray:{ray.__version__}-" in (KUBERAY / "Dockerfile").read_text()


def test_rayservice_serves_the_app_with_valid_args():
    import importlib

    from serve_apps.config import AppArgs

    doc = yaml.safe_load((KUBERAY / "rayservice.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayService"
    serve_config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    (app,) = serve_config["applications"]
    local = yaml.safe_load((CLUSTER_YAML.parent / "serve_apps" / "config.yaml").read_text())["applications"][0]
    assert app["import_path"] == local["import_path"] == "serve_apps.app:build_app"
    module, _, attr = app["import_path"].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))
    args = AppArgs.model_validate(app["args"])  # unknown or malformed keys are refused here
    assert args.models_dir.startswith("s3://") and args.generator.num_gpus == 1
    _check_cluster_spec(doc["spec"]["rayClusterConfig"])


def test_app_args_check_can_fail():
    from pydantic import ValidationError

    from serve_apps.config import AppArgs

    doc = yaml.safe_load((KUBERAY / "rayservice.yaml").read_text())
    args = yaml.safe_load(doc["spec"]["serveConfigV2"])["applications"][0]["args"]
    with pytest.raises(ValidationError):
        AppArgs.model_validate({**args, "modelsdir": "typo"})
