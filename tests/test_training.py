"""The one Ray Train loop: one and two workers, checkpoints, recovery and resume (real Ray)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models.ctgan import CTGANConfig
from engine.models.tvae import TVAEConfig
from engine.schema import infer_schema
from engine.training import ScalingOptions, TrainingError, TrainOptions, train_torch_model
from engine.training.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from engine.transforms import TabularEncoder

TINY_CTGAN = {"embedding_dim": 16, "generator_dims": (32, 32), "discriminator_dims": (32, 32)}
TINY_TVAE = {"embedding_dim": 8, "compress_dims": (32,), "decompress_dims": (32,)}


@pytest.fixture(scope="module")
def encoded(adult_small):
    enc = TabularEncoder().fit(adult_small, infer_schema(adult_small))
    return enc, enc.transform(adult_small)


def _train(encoded, model="tvae", config=None, **opts):
    enc, x = encoded
    scaling = ScalingOptions(num_workers=opts.pop("num_workers", 1))
    hooks = opts.pop("hooks", None)
    options = TrainOptions(**{"epochs": 3, "batch_size": 100, "show_progress": False, **opts})
    return train_torch_model(
        model_name=model,
        model_config=config or (TINY_TVAE if model == "tvae" else TINY_CTGAN),
        layout=enc.layout_,
        data=x,
        options=options,
        scaling=scaling,
        _test_hooks=hooks,
    )


def test_one_worker_trains_and_loss_falls(encoded, ray_session):
    result = _train(encoded, epochs=6)
    losses = [h["loss"] for h in result.history]
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5, 6]
    assert losses[-1] < losses[0]
    assert result.epochs_completed == 6 and "encoder.mu.weight" in result.state_tensors


def test_two_workers_ddp_match_one_worker_quality(encoded, ray_session):
    """CTGAN (BatchNorm, gradient penalty) under DDP: its loss curve ends where one worker's does."""
    one = _train(encoded, model="ctgan", epochs=4, num_workers=1)
    two = _train(encoded, model="ctgan", epochs=4, num_workers=2)
    # The conditional cross-entropy measures how well the generator obeys its condition: it must fall
    # similarly with two workers (each on half the rows) as with one.
    c1, c2 = one.history[-1]["loss_condition"], two.history[-1]["loss_condition"]
    assert two.history[-1]["loss_condition"] < two.history[0]["loss_condition"]
    assert abs(c1 - c2) < 0.35 * max(c1, c2)
    for key in one.state_tensors:
        assert one.state_tensors[key].shape == two.state_tensors[key].shape


def test_checkpoint_round_trip_is_exact(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(3)
    rng = np.random.default_rng(5)
    rng.random(3)
    st = TrainingState(
        epoch=7,
        model_tensors={k: v for k, v in net.state_dict().items()},
        optimizers={"opt": opt.state_dict()},
        history=[{"epoch": 7, "loss": 0.5}],
        extra_state={"f": [0.1, 0.9]},
        numpy_rng=rng.bit_generator.state,
        torch_rng=gen.get_state(),
    )
    save_checkpoint(tmp_path, st)
    back = load_checkpoint(tmp_path)
    assert back.epoch == 7 and back.history == st.history and back.extra_state == st.extra_state
    for k in st.model_tensors:
        assert torch.equal(back.model_tensors[k], st.model_tensors[k])
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back.optimizers["opt"])
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    rng2 = np.random.default_rng(0)
    rng2.bit_generator.state = back.numpy_rng
    assert rng2.random() == rng.random()
    g2 = torch.Generator()
    g2.set_state(back.torch_rng)
    assert torch.equal(torch.rand(3, generator=g2), torch.rand(3, generator=gen))
    assert not any(p.suffix == ".pkl" for p in tmp_path.iterdir())


def test_worker_failure_recovers_from_checkpoint(encoded, ray_session, tmp_path):
    marker = tmp_path / "failed-once"
    result = _train(
        encoded,
        epochs=5,
        checkpoint_every=2,
        max_failures=1,
        storage_path=str(tmp_path / "runs"),
        run_name="recover",
        hooks={"fail_once_at_epoch": 3, "fail_once_marker": str(marker)},
    )
    assert marker.exists()  # the failure really happened
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]  # epochs 1-2 came from the checkpoint, once
    assert result.epochs_completed == 5


def test_failed_run_restarted_with_same_name_resumes(encoded, ray_session, tmp_path):
    storage, marker = str(tmp_path / "runs"), tmp_path / "failed-once"
    hooks = {"fail_once_at_epoch": 3, "fail_once_marker": str(marker)}
    with pytest.raises(TrainingError, match="injected failure"):
        _train(encoded, epochs=5, checkpoint_every=1, storage_path=storage, run_name="again", hooks=hooks)
    first_history = load_checkpoint(_latest_checkpoint(storage, "again")).history
    assert [h["epoch"] for h in first_history] == [1, 2, 3]
    result = _train(encoded, epochs=5, checkpoint_every=1, storage_path=storage, run_name="again", hooks=hooks)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    assert result.history[:3] == first_history  # resumed, not retrained


def _latest_checkpoint(storage: str, name: str):
    from pathlib import Path

    found = sorted(p for p in Path(storage, name).glob("checkpoint_*") if p.is_dir())
    assert found, "the failed run left no checkpoint"
    return found[-1]


def test_too_few_rows_for_workers_is_a_clear_error(encoded, ray_session):
    enc, x = encoded
    with pytest.raises(TrainingError, match="no rows"):
        train_torch_model(
            model_name="tvae", model_config=TINY_TVAE, layout=enc.layout_, data=x[:1],
            options=TrainOptions(epochs=1, batch_size=2, show_progress=False), scaling=ScalingOptions(num_workers=2),
        )
