"""The model artifact: round trip, atomic replacement, and clear errors on damage."""
from __future__ import annotations

import json

import pytest
import torch

from engine.core.errors import ArtifactError
from engine.store import Artifact, list_artifacts, load_artifact, save_artifact


def _artifact(scale: float = 1.0) -> Artifact:
    return Artifact(
        model="ctgan",
        config={"model_config": {"embedding_dim": 8}},
        schema={"columns": [], "num_rows": 3},
        preprocessor={"spans": [1, 2]},
        model_state={"freq": [0.5, 0.5]},
        metrics={"history": [{"epoch": 1, "loss": 0.3}]},
        tensors={"generator.w": torch.arange(6, dtype=torch.float32).reshape(2, 3) * scale},
    )


def test_round_trip(tmp_path):
    save_artifact(_artifact(), tmp_path / "m")
    art = load_artifact(tmp_path / "m")
    assert art.model == "ctgan"
    assert art.config == {"model_config": {"embedding_dim": 8}}
    assert art.model_state == {"freq": [0.5, 0.5]}
    assert torch.equal(art.tensors["generator.w"], _artifact().tensors["generator.w"])
    assert art.manifest["format_version"] == 1
    assert list_artifacts(tmp_path) == ["m"]


def test_save_replaces_previous_model_and_leaves_no_staging(tmp_path):
    save_artifact(_artifact(1.0), tmp_path / "m")
    save_artifact(_artifact(2.0), tmp_path / "m")
    assert load_artifact(tmp_path / "m").tensors["generator.w"][1, 2].item() == 10.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_no_pickle_in_artifact(tmp_path):
    save_artifact(_artifact(), tmp_path / "m")
    for f in (tmp_path / "m").iterdir():
        if f.suffix == ".json":
            json.loads(f.read_text())
        else:
            assert f.name == "weights.safetensors"


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda d: (d / "schema.json").write_text("{not json"), ["schema.json", "not valid JSON"]),
        (lambda d: (d / "weights.safetensors").write_bytes(b"\x00\x01garbage"), ["weights.safetensors", "corrupted"]),
        (lambda d: (d / "preprocessor.json").unlink(), ["preprocessor.json", "incomplete"]),
        (lambda d: (d / "manifest.json").write_text(json.dumps({"format": "other"})), ["not a model saved"]),
        (
            lambda d: (d / "manifest.json").write_text(json.dumps({"format": "synth-engine-model", "format_version": 99})),
            ["version 99", "reads version 1"],
        ),
    ],
)
def test_damaged_artifact_gives_clear_error(tmp_path, damage, words):
    save_artifact(_artifact(), tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(ArtifactError) as info:
        load_artifact(tmp_path / "m")
    for w in words:
        assert w in str(info.value)


def test_missing_and_file_paths(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "absent")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ArtifactError, match="is a file"):
        load_artifact(tmp_path / "f")
    with pytest.raises(ArtifactError, match="a file"):
        save_artifact(_artifact(), tmp_path / "f")
    assert (tmp_path / "f").read_text() == "x"
