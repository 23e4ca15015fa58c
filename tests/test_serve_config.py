"""The shipped serve_apps/config.yaml: valid for Serve and for AppArgs, and small enough for a 2-core machine."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serve_apps.config import AppArgs, DeploymentOptions, reserved_cpus

CONFIG = Path(__file__).resolve().parents[1] / "serve_apps" / "config.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_config_is_a_valid_serve_config(config):
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(config)


def test_config_args_are_app_args_with_auth_on(config):
    (app,) = config["applications"]
    assert app["import_path"] == "serve_apps.app:build_app"
    args = AppArgs.model_validate(app["args"])  # unknown or ill-typed keys fail here
    assert args.auth is True


def test_config_fits_two_cpus_at_min_replicas(config):
    args = AppArgs.model_validate(config["applications"][0]["args"])
    assert reserved_cpus(args) <= 2 - 0.25, "leave room on a 2-core machine for Serve's own actors and the driver"
    assert reserved_cpus(AppArgs(models_dir="models")) <= 2 - 0.25  # the builder's defaults too


def test_reserved_cpus_counts_min_and_initial_replicas():
    args = AppArgs(
        models_dir="m",
        generator=DeploymentOptions(num_cpus=0.5, autoscaling_config={"min_replicas": 1, "initial_replicas": 3, "max_replicas": 8}),
        evaluator=DeploymentOptions(num_cpus=0.25, num_replicas=2),
        ingress=DeploymentOptions(num_cpus=0.25, autoscaling_config={"max_replicas": 2}),
    )
    assert reserved_cpus(args) == pytest.approx(0.5 * 3 + 0.25 * 2 + 0.25)
