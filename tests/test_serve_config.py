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


def test_limits_are_per_modality_with_a_default(config):
    shipped = AppArgs.model_validate(config["applications"][0]["args"])
    assert shipped.chunk_rows_for("table") == 50_000 and shipped.chunk_rows_for("image") == 256
    assert shipped.chunk_rows_for("some-plugin") == 50_000  # a modality not named gets the default
    # An integer is the default for every modality; modalities the shipped mapping names keep their own.
    args = AppArgs(models_dir="m", chunk_rows=2_000, max_rows_per_request={"image": 10, "audio": 7})
    assert args.chunk_rows == {"default": 2_000, "image": 256, "audio": 256}
    assert shipped.chunk_rows_for("audio") == 256 and shipped.max_rows_for("audio") == 20_000
    assert args.max_rows_for("image") == 10 and args.max_rows_for("audio") == 7 and args.max_rows_for("table") == 5_000_000


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"image_chunk_rows": 64}, "write chunk_rows: {image: 64}"),
        ({"max_images_per_request": 9}, "write max_rows_per_request: {image: 9}"),
        ({"chunk_rows": {"image": 0}}, "chunk_rows.image"),
        ({"chunk_rows": [64]}, "an integer (for every modality) or a mapping"),
        ({"modalities": ["my_plugin.modality"]}, "modalities[0] is 'my_plugin.modality'"),
    ],
)
def test_bad_limits_and_modalities_are_refused_by_name(extra, fragment):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as exc:
        AppArgs(models_dir="m", **extra)
    assert fragment in str(exc.value)


def test_modalities_are_imported_and_limits_checked_before_deploying(monkeypatch):
    from serve_apps.config import ServeConfigError, check_modalities

    monkeypatch.delenv("SYNTH_MODALITIES", raising=False)
    (tone,) = check_modalities(AppArgs(models_dir="m", modalities=["tests.serve_plugin:MODALITY"], chunk_rows={"tone": 4}))
    assert tone.name == "tone"
    with pytest.raises(ServeConfigError, match=r"chunk_rows names 'imag', which this server does not know"):
        check_modalities(AppArgs(models_dir="m", chunk_rows={"imag": 4}))
    with pytest.raises(ServeConfigError, match=r"modalities\[0\]: Cannot import 'tests.no_such_plugin:MODALITY'"):
        check_modalities(AppArgs(models_dir="m", modalities=["tests.no_such_plugin:MODALITY"]))
    with pytest.raises(ServeConfigError, match="names the class ToneSynthesizer, not an engine.core.registry.Modality"):
        check_modalities(AppArgs(models_dir="m", modalities=["tests.serve_plugin:ToneSynthesizer"]))
