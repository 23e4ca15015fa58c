"""A modality defined outside the engine (tests/toy_modality.py) goes through every interface.

Nothing in ``engine/``, ``jobs/`` or ``serve_apps/`` names it: it is registered at run
time (in this process with ``register_modality``, in a CLI process through
``SYNTH_MODALITIES``), trained by the one Ray Train loop, saved, loaded by
``load_synthesizer``, sampled in shards by Ray Data actors and described by the CLI.
The Serve app serves it in tests/test_serve.py.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.core.errors import ArtifactError
from engine.core.registry import (
    ModalityRegistry,
    get_modality,
    load_synthesizer,
    modality_for_model,
    register_modality,
    unregister_modality,
)
from tests.toy_modality import TOY, ToySequenceSynthesizer

REPO = Path(__file__).resolve().parents[1]
TOY_REFERENCE = "tests.toy_modality:TOY"


@pytest.fixture
def toy_registered():
    register_modality(TOY)
    yield TOY
    unregister_modality(TOY.name)


def _sequences(n: int = 256, steps: int = 6, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Sequences whose per-step means differ clearly: a trained model must place them."""
    rng = np.random.default_rng(seed)
    means = np.linspace(-3.0, 3.0, steps)[:, None] * np.array([1.0, -2.0])[:channels]
    return means + rng.normal(scale=0.5, size=(n, steps, channels))


@pytest.fixture(scope="module")
def toy_model_dir(ray_session, tmp_path_factory):
    """One toy model, trained through Ray Train and saved, shared by the tests of this module."""
    register_modality(TOY)
    try:
        synth = ToySequenceSynthesizer(model_config={"lr": 0.1}).fit(_sequences(), epochs=40, batch_size=64, seed=3)
        path = synth.save(tmp_path_factory.mktemp("toy") / "model")
    finally:
        unregister_modality(TOY.name)
    return Path(path)


def test_registry_finds_the_toy_modality_only_once_registered():
    with pytest.raises(Exception, match="Unknown modality 'toy_sequence'.*'table', 'image'"):
        get_modality("toy_sequence")
    register_modality(TOY)
    try:
        assert modality_for_model("toy_gaussian") is TOY
        assert get_modality("toy_sequence").synthesizer_class() is ToySequenceSynthesizer
    finally:
        unregister_modality(TOY.name)


def test_fit_learns_sample_save_and_load(toy_model_dir, toy_registered):
    real = _sequences(n=4000, seed=9)
    synth = load_synthesizer(toy_model_dir)
    assert isinstance(synth, ToySequenceSynthesizer) and synth.history_, "the model was trained by the loop"
    generated = synth.sample(4000, seed=7)
    assert generated.shape == (4000, 6, 2)
    # The learned per-step means and spreads match the real ones (an untrained model gives the global
    # mean of every step: errors of up to 6 here).
    np.testing.assert_allclose(generated.mean(axis=0), real.mean(axis=0), atol=0.15)
    np.testing.assert_allclose(generated.std(axis=0), real.std(axis=0), atol=0.1)
    np.testing.assert_array_equal(generated, load_synthesizer(toy_model_dir).sample(4000, seed=7))
    manifest = json.loads((toy_model_dir / "manifest.json").read_text())
    assert manifest["modality"] == "toy_sequence" and manifest["model"] == "toy_gaussian"


def test_loading_without_the_modality_names_what_is_missing(toy_model_dir):
    with pytest.raises(ArtifactError, match="Unknown modality 'toy_sequence'.*SYNTH_MODALITIES"):
        load_synthesizer(toy_model_dir)


def test_sharded_sampling_of_the_toy_model_is_exact_and_independent_of_the_pool(toy_model_dir, toy_registered, tmp_path):
    from engine.batch.sharded import sample_to_parquet

    one = sample_to_parquet(toy_model_dir, tmp_path / "one", num_rows=25, rows_per_shard=10, seed=4, num_actors=1)
    two = sample_to_parquet(toy_model_dir, tmp_path / "two", num_rows=25, rows_per_shard=10, seed=4, num_actors=2)
    assert one.num_shards == 3
    a = pd.concat(pd.read_parquet(f) for f in one.files)
    b = pd.concat(pd.read_parquet(f) for f in two.files)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert a["sequence_id"].nunique() == 25 and len(a) == 25 * 6
    assert sorted(a["sequence_id"].unique()) == list(range(25))  # ids unique across shards


def _synth_cli(*args: str, ray_address: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTH_MODALITIES": TOY_REFERENCE, "PYTHONPATH": str(REPO)}
    if ray_address:
        env["RAY_ADDRESS"] = ray_address  # as inside `ray job submit`: the command joins a running Ray
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, env=env, timeout=600)


def test_cli_fits_samples_and_describes_the_toy_modality(tmp_path, ray_session):
    data = tmp_path / "sequences.npy"
    np.save(data, _sequences(n=128))
    # The session's Ray, joined through RAY_ADDRESS, saves starting a second one (a fresh start's
    # console is tested in tests/test_cli.py).
    address = ray_session.get_runtime_context().gcs_address
    fit = _synth_cli("fit", str(data), "--model", "toy_gaussian", "--epochs", "2", "--batch-size", "32", "--out", str(tmp_path / "m"), ray_address=address)
    assert fit.returncode == 0, fit.stderr[-2000:]
    sample = _synth_cli("sample", str(tmp_path / "m"), "--rows", "7", "--seed", "1", "--out", str(tmp_path / "s.parquet"))
    assert sample.returncode == 0, sample.stderr[-2000:]
    assert re.search(r"wrote 7 sequences", sample.stdout)
    rows = pd.read_parquet(tmp_path / "s.parquet")
    assert list(rows.columns) == ["sequence_id", "step", "c0", "c1"] and len(rows) == 7 * 6
    info = _synth_cli("info", str(tmp_path / "m"))
    assert info.returncode == 0, info.stderr[-2000:]
    card = json.loads(info.stdout)
    assert card["modality"] == "toy_sequence" and card["sequence"] == {"steps": 6, "channels": 2}


def test_installed_plugins_are_found_through_entry_points(tmp_path, monkeypatch):
    """A package that declares the entry point is found without any registration call."""
    dist = tmp_path / "toy_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[synth_engine.modalities]\ntoy = {TOY_REFERENCE}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ModalityRegistry()
    assert registry.for_model("toy_gaussian") is TOY
    assert {"table", "image", "toy_sequence"} <= set(registry.all())


def test_training_starts_from_pretrained_weights_in_a_folder(toy_model_dir, toy_registered, tmp_path):
    """TorchSynthModel.from_pretrained: the weights of a folder are where every worker starts."""
    from safetensors.torch import save_file

    trained = load_synthesizer(toy_model_dir)
    weights = trained._model.state_tensors()
    folder = tmp_path / "pretrained"
    folder.mkdir()
    save_file(weights, str(folder / "model.safetensors"))
    # A learning rate too small to move anything: the result is the pretrained start itself.
    tuned = ToySequenceSynthesizer(model_config={"lr": 1e-9}, pretrained=folder).fit(_sequences(n=64), epochs=1, batch_size=32)
    for name, tensor in tuned._model.state_tensors().items():
        torch.testing.assert_close(tensor, weights[name], atol=1e-6, rtol=0)
    save_file({"gaussian.mean": weights["gaussian.mean"]}, str(folder / "model.safetensors"))
    with pytest.raises(ArtifactError, match=r"do not fit a toy_gaussian.*missing \['gaussian.log_scale'\]"):
        ToySequenceSynthesizer(pretrained=folder).fit(_sequences(n=64), epochs=1)
    with pytest.raises(ArtifactError, match="not a folder, nor a hub id"):
        ToySequenceSynthesizer(pretrained=tmp_path / "nowhere").fit(_sequences(n=64), epochs=1)
