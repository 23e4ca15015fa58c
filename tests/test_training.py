"""The one Ray Train loop: one and two workers, checkpoints, recovery and resume (real Ray)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from engine.tabular.schema import infer_schema
from engine.training import ScalingOptions, TrainingError, TrainOptions, train_torch_model
from engine.core.registry import get_model_class
from engine.core.runtime import SharedStorageError, alive_nodes, require_shared_location, torch_threads
from engine.training.checkpoint import (
    RankRandomState,
    TrainingState,
    load_checkpoint,
    load_rank_random_state,
    save_checkpoint,
    save_rank_random_state,
    state_digest,
)
from engine.training.loop import auto_cpus_per_worker
from engine.tabular.transforms import TabularEncoder

TINY_CTGAN = {"embedding_dim": 16, "generator_dims": (32, 32), "discriminator_dims": (32, 32)}
TINY_TVAE = {"embedding_dim": 8, "compress_dims": (32,), "decompress_dims": (32,)}


@pytest.fixture(scope="module")
def encoded(adult_small):
    enc = TabularEncoder().fit(adult_small, infer_schema(adult_small))
    return enc, enc.transform(adult_small)


def _train(encoded, model="tvae", config=None, **opts):
    enc, x = encoded
    scaling = ScalingOptions(num_workers=opts.pop("num_workers", 1), cpus_per_worker=opts.pop("cpus_per_worker", None))
    hooks = opts.pop("hooks", None)
    options = TrainOptions(**{"epochs": 3, "batch_size": 100, "show_progress": False, **opts})
    return train_torch_model(
        model_name=model, model_class=get_model_class(model),
        model_config=config or (TINY_TVAE if model == "tvae" else TINY_CTGAN),
        layout=enc.layout_,
        data=x,
        options=options,
        scaling=scaling,
        _test_hooks=hooks,
    )


def _reference_run(encoded, model: str, config: dict, epochs: int, batch_size: int, seed: int = 0):
    """The loop's one-worker run redone in this process: same seeds, batch order and thread count.

    Returns the state tensors and the per-epoch mean losses the loop must reproduce exactly.
    """
    from engine.training.loop import _worker_seed

    enc, x = encoded
    cls = get_model_class(model)
    threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads(1))  # what a worker with cpus_per_worker=1 uses: same float sums
    try:
        worker_seed = _worker_seed(seed, 0)
        torch.manual_seed(worker_seed)
        m = cls(cls.config_from_dict(config), enc.layout_)
        optimizers = m.configure_optimizers()
        sampler = m.batch_sampler(x, batch_size, np.random.default_rng(worker_seed))
        gen = torch.Generator().manual_seed(worker_seed)
        history = []
        for _ in range(epochs):
            sums, steps = {}, 0
            for batch in sampler.epoch():
                for k, v in m.train_step(batch, optimizers, gen).items():
                    sums[k] = sums.get(k, 0.0) + v
                steps += 1
            history.append({k: v / steps for k, v in sums.items()})
        return m.state_tensors(), history
    finally:
        torch.set_num_threads(threads)


def test_one_worker_run_is_the_plain_torch_run(encoded, ray_session):
    """One worker trains exactly as plain torch would: same weights, same losses, to the bit."""
    result = _train(encoded, epochs=3, cpus_per_worker=1)
    tensors, history = _reference_run(encoded, "tvae", TINY_TVAE, epochs=3, batch_size=100)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.epochs_completed == 3 and result.steps_completed == 3 * (len(encoded[1]) // 100)
    assert [{k: v for k, v in h.items() if k not in ("epoch", "seconds")} for h in result.history] == history
    assert history[-1]["loss"] < history[0]["loss"] - 1.0  # and the run learns: a clear fall, not noise
    assert tensors.keys() == result.state_tensors.keys()
    for key, value in tensors.items():
        assert torch.equal(result.state_tensors[key], value), key


def test_two_ctgan_workers_stay_bit_identical(encoded, ray_session):
    """CTGAN (BatchNorm, gradient penalty, EMA) under DDP: both ranks end with the very same state.

    That DDP's averaged update is the one-worker update of the union of the ranks' batches is
    checked exactly on a linear model (test_training_loop_general.py::test_two_workers_average_gradients_exactly).
    """
    two = _train(encoded, model="ctgan", epochs=2, num_workers=2, cpus_per_worker=1)
    assert sorted(two.rank_state_digests) == [0, 1]
    # Parameters, BatchNorm buffers and the generator's EMA copy (taken from each rank's own init
    # before DDP broadcast rank 0's weights: the loop broadcasts shadow modules too).
    assert set(two.rank_state_digests.values()) == {state_digest(two.state_tensors)}
    assert any(k.startswith("generator_ema.") for k in two.state_tensors)
    assert all(np.isfinite(v) for row in two.history for v in row.values())


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
        resumed_at=[4],
    )
    save_checkpoint(tmp_path, st)
    global_state = torch.get_rng_state()
    for rank in (0, 1):
        save_rank_random_state(tmp_path, rank, RankRandomState(
            numpy_rng=rng.bit_generator.state, torch_rng=gen.get_state(), torch_global_rng=global_state,
            state_digest=state_digest(st.model_tensors),
        ))
    back = load_checkpoint(tmp_path)
    assert back.epoch == 7 and back.history == st.history and back.extra_state == st.extra_state
    assert back.resumed_at == [4]
    for k in st.model_tensors:
        assert torch.equal(back.model_tensors[k], st.model_tensors[k])
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back.optimizers["opt"])
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    rs = load_rank_random_state(tmp_path, 1)
    assert rs.state_digest == state_digest(back.model_tensors)
    assert load_rank_random_state(tmp_path, 2) is None  # a rank the run did not have
    rng2 = np.random.default_rng(0)
    rng2.bit_generator.state = rs.numpy_rng
    assert rng2.random() == rng.random()
    g2 = torch.Generator()
    g2.set_state(rs.torch_rng)
    assert torch.equal(torch.rand(3, generator=g2), torch.rand(3, generator=gen))
    assert torch.equal(rs.torch_global_rng, global_state)
    assert not any(p.suffix == ".pkl" for p in tmp_path.iterdir())


def _epoch_log(log, rank: int) -> list[dict]:
    import json
    from pathlib import Path

    return [json.loads(line) for line in Path(f"{log}.rank{rank}").read_text().splitlines()]


def test_worker_failure_recovers_from_checkpoint(encoded, ray_session, tmp_path):
    # Two workers: every rank must restart from its own state (one worker would check rank 0 alone,
    # at the cost of another Ray Train run).
    workers = 2
    marker, log = tmp_path / "failed-once", tmp_path / "epochs"
    result = _train(
        encoded,
        epochs=5,
        checkpoint_every=2,
        max_failures=1,
        num_workers=workers,
        cpus_per_worker=1,
        storage_path=str(tmp_path / "runs"),
        run_name="recover",
        hooks={"fail_once_at_epoch": 3, "fail_once_marker": str(marker), "epoch_log": str(log)},
    )
    assert marker.exists()  # the failure really happened, before epoch 4
    assert result.resumed_at == [2]  # restarted from the checkpoint after epoch 2, not from scratch
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    assert result.epochs_completed == 5
    for rank in range(workers):
        ran = _epoch_log(log, rank)
        epochs = [e["epoch"] for e in ran]
        # Epochs 1 and 2 ran once; epoch 3 (after the checkpoint) ran again, then 4 and 5.
        assert epochs[:3] == [1, 2, 3] and epochs[-3:] == [3, 4, 5] and epochs.count(1) == epochs.count(2) == 1
        # Every rank continued from its own saved random state: epoch 3 started from the same state twice.
        third = [e["random_state"] for e in ran if e["epoch"] == 3]
        assert third[0] == third[1]
    first_states = {_epoch_log(log, r)[0]["random_state"] for r in range(workers)}
    assert len(first_states) == workers  # ranks draw different batches


def _latest_checkpoint(storage: str, name: str):
    """The state of the run's checkpoint of the most epochs (whatever Ray Train names its folders)."""
    from pathlib import Path

    found = [p for p in Path(storage, name).glob("checkpoint_*") if p.is_dir()]
    assert found, "the run left no checkpoint"
    return max((load_checkpoint(p) for p in found), key=lambda st: st.epoch)


def test_named_runs_resume_from_the_default_folder_after_completing_or_failing(encoded, ray_session, tmp_path, monkeypatch):
    """A named run without ``storage_path`` keeps its checkpoints in the default folder; started again
    with the same name it resumes from its last checkpoint, whether it completed (and is asked for
    more epochs) or failed. Three runs of one name share the Ray Train start-ups this would cost apart."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("SYNTH_RUNS_DIR", str(runs))
    first = _train(encoded, epochs=2, checkpoint_every=1, run_name="stable")
    assert first.resumed_at == [] and first.checkpoint_path.startswith(str(runs / "stable"))
    # Asked for 5 epochs, it resumes after epoch 2, runs epoch 3 and fails before epoch 4.
    hooks = {"fail_once_at_epoch": 3, "fail_once_marker": str(tmp_path / "failed-once")}
    with pytest.raises(TrainingError, match="injected failure"):
        _train(encoded, epochs=5, checkpoint_every=1, run_name="stable", hooks=hooks)
    failed_history = _latest_checkpoint(str(runs), "stable").history
    assert [h["epoch"] for h in failed_history] == [1, 2, 3]
    assert failed_history[:2] == first.history  # the completed run was resumed, not retrained
    result = _train(encoded, epochs=5, checkpoint_every=1, run_name="stable", hooks=hooks)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    assert result.resumed_at == [2, 3]  # after the completed run, then after the failure
    assert result.history[:3] == failed_history  # the failed run was resumed, not retrained


def test_too_few_rows_for_workers_is_a_clear_error(encoded, ray_session):
    """In-memory data with fewer rows than workers is refused before Ray Train starts."""
    enc, x = encoded
    with pytest.raises(TrainingError, match="no rows"):
        train_torch_model(
            model_name="tvae", model_class=get_model_class("tvae"), model_config=TINY_TVAE, layout=enc.layout_, data=x[:1],
            options=TrainOptions(epochs=1, batch_size=2, show_progress=False), scaling=ScalingOptions(num_workers=2),
        )


def test_more_cpus_than_the_local_instance_has_is_a_clear_error(encoded, ray_session):
    """Ray Train would wait forever for CPUs that a local instance will never have."""
    enc, x = encoded
    total = int(ray_session.cluster_resources()["CPU"])
    with pytest.raises(TrainingError, match=rf"num_workers=2 with cpus_per_worker={total} asks for {2 * total} CPUs"):
        train_torch_model(
            model_name="tvae", model_class=get_model_class("tvae"), model_config=TINY_TVAE, layout=enc.layout_, data=x,
            options=TrainOptions(epochs=1, batch_size=2, show_progress=False),
            scaling=ScalingOptions(num_workers=2, cpus_per_worker=total),
        )


def test_unnamed_run_leaves_no_checkpoints_and_its_worker_uses_the_cpus_it_reserved(encoded, ray_session, tmp_path, monkeypatch):
    import tempfile
    from pathlib import Path

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    log = tmp_path / "epochs"
    result = _train(encoded, epochs=1, cpus_per_worker=2, hooks={"epoch_log": str(log)})
    assert result.checkpoint_path is None and not list(Path(tmp_path).glob("synth-train-*"))
    # Ray starts its worker processes with one intra-op thread: a worker given 2 CPUs used only one.
    assert _epoch_log(log, 0)[0]["threads"] == torch_threads(2) == min(2, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize(
    ("available", "workers", "largest_node", "expected"),
    [
        (2, 1, 2, 2.0),  # a laptop: one worker gets every core
        (8, 1, 4, 4.0),  # two 4-CPU nodes: one worker cannot reserve 8
        (8, 2, 4, 4.0),
        (16, 8, 4, 2.0),
        (1, 4, 4, 1.0),  # never below one
        (3, 2, 0, 1.0),
    ],
)
def test_auto_cpus_per_worker_fits_on_one_node(available, workers, largest_node, expected):
    assert auto_cpus_per_worker(available, workers, largest_node) == expected


def test_threads_never_exceed_the_cores_of_the_machine():
    cores = len(os.sched_getaffinity(0))
    assert torch_threads(0.5) == 1 and torch_threads(1) == 1
    assert torch_threads(cores + 3) == cores


def test_multi_node_cluster_needs_a_shared_location(ray_session, tmp_path):
    node = alive_nodes()[0]
    two_nodes = [node, node]  # the one real node, counted twice: the probe runs on it twice
    with pytest.raises(SharedStorageError, match="2 nodes but no 'storage_path'.*s3://"):
        require_shared_location(None, option="storage_path", what="checkpoints", writable=True, nodes=two_nodes)
    require_shared_location(str(tmp_path / "shared"), option="storage_path", what="checkpoints", writable=True, nodes=two_nodes)
    assert list((tmp_path / "shared").iterdir()) == []  # the probe's marker is removed
    require_shared_location("s3://bucket/runs", option="storage_path", what="checkpoints", writable=True, nodes=two_nodes)
    require_shared_location(None, option="storage_path", what="checkpoints", writable=True, nodes=[node])


def _image_layout_and_data(n: int = 64):
    from engine.images.transforms import ImageLayout

    layout = ImageLayout(height=8, width=8, channels=1, class_names=())
    rng = np.random.default_rng(0)
    pixels = rng.uniform(-1, 1, size=(n, 64)).astype(np.float32)
    return layout, np.concatenate([pixels, -np.ones((n, 1), np.float32)], axis=1)


@pytest.mark.parametrize("model", ["tvae", "dcgan"])
def test_two_worker_ranks_end_with_identical_parameters_and_buffers(encoded, ray_session, model):
    """DDP keeps parameters in step; the loop must also keep BatchNorm buffers equal (DCGAN's
    discriminator runs a bare forward for the generator's loss, which updates each rank's statistics)."""
    if model == "dcgan":
        layout, x = _image_layout_and_data()
        config = {"latent_dim": 8, "generator_width": 4, "discriminator_width": 4}
    else:
        (_, x), layout, config = encoded, encoded[0].layout_, TINY_TVAE
    result = train_torch_model(
        model_name=model, model_class=get_model_class(model), model_config=config, layout=layout, data=x,
        options=TrainOptions(epochs=2, batch_size=16, show_progress=False),
        scaling=ScalingOptions(num_workers=2, cpus_per_worker=1),
    )
    assert sorted(result.rank_state_digests) == [0, 1]
    assert set(result.rank_state_digests.values()) == {state_digest(result.state_tensors)}
    if model == "dcgan":
        assert any("running_mean" in k for k in result.state_tensors)  # buffers are part of the digest
