"""The one training loop on any batch: N-d and dict data, streamed shards, steps, schedules,
gradient accumulation and phases (tiny toy models defined here; real Ray, one session)."""
from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from ray import cloudpickle as ray_cloudpickle
from torch import nn

from engine.core.contract import (
    Phase,
    ShardStream,
    ShuffledBatches,
    StreamingBatches,
    TorchSynthModel,
)
from engine.core.errors import InvalidDataError, InvalidOptionError
from engine.core.precision import native_bfloat16
from engine.core.registry import get_model_class
from engine.training import ScalingOptions, TrainOptions, train_torch_model
from engine.training.checkpoint import load_checkpoint, state_digest
from engine.training.loop import _read_shard, _worker_seed, dataset_from_arrays
from engine.training.steps import PhaseError, ScheduleFactor, StepRunner, build_schedulers, plan_phases

T, C = 5, 3  # time steps and channels of the toy sequences

# Ray workers cannot import this module by its pytest name: its toy models travel by value.
ray_cloudpickle.register_pickle_by_value(sys.modules[__name__])


@dataclass(frozen=True)
class ToyLayout:
    """The toy models' layout: what the loop rebuilds on a worker."""

    steps: int = T
    channels: int = C

    def to_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "channels": self.channels}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ToyLayout:
        return cls(int(d["steps"]), int(d["channels"]))


@dataclass
class ToyConfig:
    lr: float = 0.05


class _Toy(TorchSynthModel):
    config_class: ClassVar[type] = ToyConfig
    layout_class: ClassVar[type] = ToyLayout

    def generate(self, num_rows: int, conditions: Any, generator: torch.Generator) -> np.ndarray:
        raise NotImplementedError


class SequenceToy(_Toy):
    """A per-step linear map of ``(B, T, C)`` sequences; reports the learning rate it stepped with."""

    name: ClassVar[str] = "sequence_toy"

    def __init__(self, config: ToyConfig, layout: ToyLayout):
        super().__init__(config, layout)
        self.nets["net"] = nn.Linear(layout.channels, layout.channels)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": torch.optim.SGD(self.nets["net"].parameters(), lr=self.config.lr)}

    def train_step(self, batch: torch.Tensor, optimizers, generator: torch.Generator) -> dict[str, float]:
        # The loop must hand the sequences over as they were: (B, T, C) float32.
        assert batch.dtype == torch.float32 and batch.shape[1:] == (self.layout.steps, self.layout.channels), batch.shape
        noisy = batch + 0.1 * torch.randn(batch.shape, generator=generator)
        loss = ((self.nets["net"](noisy) - batch) ** 2).mean()
        opt = optimizers["opt"]
        lr = opt.param_groups[0]["lr"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach()), "lr": lr}


class MaskedToy(_Toy):
    """Padded sequences with a mask ``{"x": (B, T, C), "mask": (B, T), "length": (B,), "id": (B,)}``."""

    name: ClassVar[str] = "masked_toy"
    streamed = False

    def __init__(self, config: ToyConfig, layout: ToyLayout):
        super().__init__(config, layout)
        self.nets["net"] = nn.Linear(layout.channels, layout.channels)

    @classmethod
    def supports_streaming(cls) -> bool:
        return True  # it keeps the default samplers; it only watches which one it got

    def batch_sampler(self, data: Any, batch_size: int, rng: np.random.Generator):
        self.streamed = isinstance(data, ShardStream)
        return super().batch_sampler(data, batch_size, rng)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": torch.optim.SGD(self.nets["net"].parameters(), lr=self.config.lr)}

    def train_step(self, batch: dict[str, torch.Tensor], optimizers, generator: torch.Generator) -> dict[str, float]:
        x, mask, length, ids = batch["x"], batch["mask"], batch["length"], batch["id"]
        assert set(batch) == {"x", "mask", "length", "id"}
        assert x.dtype == torch.float32 and x.shape[1:] == (T, C)
        assert mask.dtype == torch.bool and mask.shape == x.shape[:2]
        assert length.dtype == torch.int64 and ids.dtype == torch.int64
        # Rows stay whole: each sample's mask covers exactly its length, and padding is zero.
        assert torch.equal(mask.sum(dim=1), length) and not x[~mask].any()
        err = ((self.nets["net"](x) - x) ** 2).sum(dim=-1)
        loss = (err * mask).sum() / mask.sum()
        optimizers["opt"].zero_grad()
        loss.backward()
        optimizers["opt"].step()
        return {"loss": float(loss.detach()), "id_sum": float(ids.sum()), "streamed": float(self.streamed)}


class LinearToy(_Toy):
    """Least squares on rows ``[x (4 columns), y]`` with plain SGD: its updates are linear in the gradient."""

    name: ClassVar[str] = "linear_toy"
    supports_grad_accumulation: ClassVar[bool] = True

    def __init__(self, config: ToyConfig, layout: ToyLayout):
        super().__init__(config, layout)
        self.nets["net"] = nn.Linear(4, 1)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": torch.optim.SGD(self.nets["net"].parameters(), lr=self.config.lr)}

    def train_step(self, batch: torch.Tensor, optimizers, generator: torch.Generator) -> dict[str, float]:
        loss = ((self.nets["net"](batch[:, :4]).squeeze(1) - batch[:, 4]) ** 2).mean()
        optimizers["opt"].zero_grad()
        loss.backward()
        optimizers["opt"].step()
        return {"loss": float(loss.detach())}


class PhasedToy(_Toy):
    """Three phases as in TimeGAN: net ``a`` alone, then ``b`` alone, then both, each with its own loss key."""

    name: ClassVar[str] = "phased_toy"
    PHASES = (Phase("embed", steps=7), Phase("supervise", epochs=2), Phase("joint", steps=6))

    def __init__(self, config: ToyConfig, layout: ToyLayout):
        super().__init__(config, layout)
        self.nets["a"] = nn.Linear(C, C)
        self.nets["b"] = nn.Linear(C, C)

    def phases(self) -> list[Phase]:
        return list(self.PHASES)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {key: torch.optim.Adam(self.nets[key].parameters(), lr=self.config.lr) for key in ("a", "b")}

    def train_step(self, batch: torch.Tensor, optimizers, generator: torch.Generator) -> dict[str, float]:
        x = batch + 0.1 * torch.randn(batch.shape, generator=generator)  # the step generator matters
        a, b = self.nets["a"], self.nets["b"]
        if self.phase == "embed":
            loss, opts = ((a(x) - batch) ** 2).mean(), ["a"]
        elif self.phase == "supervise":
            loss, opts = ((b(a(x).detach()) - batch) ** 2).mean(), ["b"]
        else:
            assert self.phase == "joint", self.phase
            loss, opts = ((b(a(x)) - batch) ** 2).mean(), ["a", "b"]
        for key in opts:
            optimizers[key].zero_grad()
        loss.backward()
        for key in opts:
            optimizers[key].step()
        return {f"loss_{self.phase}": float(loss.detach())}


def _train(model_class: type, data: Any, *, workers: int = 1, hooks: Mapping[str, Any] | None = None, **opts: Any):
    config = {"lr": opts.pop("lr", 0.05)}
    options = TrainOptions(**{"epochs": 2, "batch_size": 8, "show_progress": False, **opts})
    return train_torch_model(
        model_name=model_class.name, model_class=model_class, model_config=config,
        layout=ToyLayout(), data=data, options=options,
        scaling=ScalingOptions(num_workers=workers, cpus_per_worker=1), _test_hooks=hooks,
    )


def _sequences(n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, T, C)).astype(np.float32)


def _padded(n: int = 48) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    length = rng.integers(1, T + 1, size=n)
    mask = np.arange(T)[None, :] < length[:, None]
    x = rng.normal(size=(n, T, C)).astype(np.float32) * mask[..., None]
    return {"x": x, "mask": mask, "length": length.astype(np.int64), "id": np.arange(n, dtype=np.int64)}


def _rows_without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# --------------------------------------------------------------------------- data in, data out
def test_in_memory_data_comes_back_to_the_worker_in_its_structure(ray_session):
    """N-d arrays become tensor columns; a worker reads back the shapes and dtypes it was given."""
    seq = np.random.default_rng(0).normal(size=(10, T, C)).astype(np.float16)
    back = _read_shard(dataset_from_arrays(seq).iterator())
    assert isinstance(back, np.ndarray) and back.dtype == np.float16 and np.array_equal(back, seq)
    padded = _padded(10)
    back = _read_shard(dataset_from_arrays(padded).iterator())
    assert set(back) == set(padded)
    for key, a in padded.items():
        assert back[key].dtype == a.dtype and np.array_equal(back[key], a), key
    ids = np.arange(7, dtype=np.int32)  # one value per sample
    assert np.array_equal(_read_shard(dataset_from_arrays(ids).iterator()), ids)


def test_in_memory_data_is_checked_before_training(ray_session):
    with pytest.raises(InvalidDataError, match="one length"):
        dataset_from_arrays({"x": np.zeros((4, 2)), "mask": np.zeros((3, 2), bool)})
    with pytest.raises(InvalidDataError, match="numeric or bool"):
        dataset_from_arrays(np.array([["a"], ["b"]]))
    with pytest.raises(InvalidDataError, match="at least one sample"):
        dataset_from_arrays(np.zeros((0, 3)))


def test_shuffled_batches_index_every_array_of_a_dict_alike():
    data = _padded(20)
    data["x"] = data["x"].astype(np.float64)  # becomes float32, the weights' dtype; ids and masks keep theirs
    sampler = ShuffledBatches(data, 8, np.random.default_rng(0))
    batches = list(sampler.epoch())
    assert len(sampler) == len(batches) == 2
    seen = torch.cat([b["id"] for b in batches])
    assert len(set(seen.tolist())) == 16  # 16 distinct samples, drawn without replacement
    for b in batches:
        assert b["x"].dtype == torch.float32 and b["mask"].dtype == torch.bool and b["id"].dtype == torch.int64
        rows = b["id"].numpy()
        assert np.array_equal(b["x"].numpy(), data["x"][rows].astype(np.float32))
        assert np.array_equal(b["mask"].numpy(), data["mask"][rows])


# --------------------------------------------------------------------------- sequences, steps, schedules
@pytest.fixture(scope="module")
def sequence_run(ray_session, tmp_path_factory):
    """3-D sequences, 6 optimisation steps of a cosine schedule after 2 warm-up steps, a row per step."""
    storage = tmp_path_factory.mktemp("seq")
    result = _train(
        SequenceToy, _sequences(40), max_steps=6, report_every_steps=1, checkpoint_every=2,
        lr_schedule="cosine", warmup_steps=2, lr=0.2, storage_path=str(storage), run_name="seq",
    )
    return result


def test_sequences_train_by_steps_with_one_row_per_reporting_period(sequence_run):
    # 40 sequences in batches of 8: 5 steps per epoch, so 6 steps read one epoch and a step of the next.
    assert [row["step"] for row in sequence_run.history] == [1, 2, 3, 4, 5, 6]
    assert all("epoch" not in row for row in sequence_run.history)
    assert sequence_run.steps_completed == 6 and sequence_run.epochs_completed == 1
    assert sequence_run.state_tensors["net.weight"].shape == (C, C)


def test_cosine_schedule_sets_the_learning_rate_of_every_step(sequence_run):
    factor = ScheduleFactor("cosine", warmup=2, total=6)
    expected = [0.2 * factor(s) for s in range(6)]  # 0.2/3, 0.4/3, then 0.2 down half a cosine
    used = [row["lr"] for row in sequence_run.history]
    assert used == pytest.approx(expected, rel=1e-12, abs=0)
    assert used[0] < used[1] < used[2] == pytest.approx(0.2) and used[2] > used[3] > used[4] > used[5] > 0
    saved = load_checkpoint(sequence_run.checkpoint_path)
    assert saved.optimizers["opt"]["param_groups"][0]["lr"] == pytest.approx(0.2 * factor(6), abs=1e-15)
    assert saved.schedulers["opt"]["last_epoch"] == 6 and saved.step == 6


# --------------------------------------------------------------------------- dicts with masks; streaming
@pytest.mark.parametrize("stream", [False, True])
def test_dict_batches_with_padding_masks_in_memory_and_streamed(ray_session, stream):
    result = _train(MaskedToy, _padded(48), epochs=2, stream=stream)
    assert [row["epoch"] for row in result.history] == [1, 2]
    for row in result.history:
        assert row["streamed"] == float(stream)  # the sampler got a ShardStream exactly when streaming
        # 48 samples, 6 batches of 8 per epoch: every sample once per epoch (the mean per step times 6 steps).
        assert row["id_sum"] * 6 == pytest.approx(sum(range(48)), abs=1e-9)
    assert result.steps_completed == 12 and result.epochs_completed == 2


def test_streaming_batches_reseed_the_shuffle_every_epoch():
    class _Stream(ShardStream):
        def __init__(self):
            self.calls = []

        def iter_batches(self, batch_size, *, shuffle_buffer_rows=0, seed=None, drop_last=True):
            self.calls.append((batch_size, shuffle_buffer_rows, seed, drop_last))
            yield torch.zeros(batch_size, 2)

    stream = _Stream()
    sampler = StreamingBatches(stream, 4, np.random.default_rng(0))
    with pytest.raises(TypeError):
        len(sampler)  # unknown until read
    list(sampler.epoch()), list(sampler.epoch())
    (b1, buf1, s1, d1), (_, _, s2, _) = stream.calls
    assert (b1, buf1, d1) == (4, 32, True) and s1 != s2


# --------------------------------------------------------------------------- gradient accumulation
def _reference_sgd(x: np.ndarray, batch_size: int, epochs: int, lr: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """What one worker computes with one batch per step: the same init and batch order, in this process."""
    worker_seed = _worker_seed(seed, 0)
    torch.manual_seed(worker_seed)
    model = LinearToy(ToyConfig(lr=lr), ToyLayout())
    optimizers = model.configure_optimizers()
    sampler = ShuffledBatches(x, batch_size, np.random.default_rng(worker_seed))
    gen = torch.Generator().manual_seed(worker_seed)
    for _ in range(epochs):
        for batch in sampler.epoch():
            model.train_step(batch, optimizers, gen)
    return model.state_tensors()


def _regression_rows(n: int = 64) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=n)
    return np.column_stack([x, y]).astype(np.float32)


def test_grad_accumulation_equals_one_batch_k_times_larger(ray_session):
    rows = _regression_rows(64)
    # 4 batches of 8 per step: 2 steps per epoch, each the update of one batch of 32 (same rows, same order).
    result = _train(LinearToy, rows, epochs=2, batch_size=8, grad_accumulation_steps=4, lr=0.1)
    reference = _reference_sgd(rows, batch_size=32, epochs=2, lr=0.1)
    assert result.steps_completed == 4
    for key, value in reference.items():
        torch.testing.assert_close(result.state_tensors[key], value, rtol=0, atol=1e-6)
    # ...and not the update of 8-row batches, which the same rows would give without accumulation.
    unaccumulated = _reference_sgd(rows, batch_size=8, epochs=2, lr=0.1)
    assert not torch.allclose(result.state_tensors["net.weight"], unaccumulated["net.weight"], atol=1e-3)


@pytest.mark.parametrize(("batch_size", "accumulate"), [(32, 1), (16, 2)])
def test_two_workers_average_gradients_exactly(ray_session, batch_size, accumulate):
    """Two workers whose one step covers their whole shard (32 of 64 rows, in one batch or accumulated
    over two under DDP's no_sync): each step averages the two shards' mean gradients, which is the
    full-batch gradient step whichever rows each rank was given."""
    rows = _regression_rows(64)
    result = _train(
        LinearToy, rows, workers=2, epochs=3, batch_size=batch_size, grad_accumulation_steps=accumulate, lr=0.1
    )
    reference = _reference_sgd(rows, batch_size=64, epochs=3, lr=0.1)  # from rank 0's init, which DDP broadcasts
    assert result.steps_completed == 3 and sorted(result.rank_state_digests) == [0, 1]
    assert set(result.rank_state_digests.values()) == {state_digest(result.state_tensors)}
    for key, value in reference.items():
        torch.testing.assert_close(result.state_tensors[key], value, rtol=0, atol=1e-6)


def test_models_that_cannot_accumulate_or_stream_are_refused_before_ray_starts():
    ctgan = get_model_class("ctgan")
    for opts, match in [
        ({"grad_accumulation_steps": 2}, "'grad_accumulation_steps' option must be 1 for model 'ctgan'.*like a GAN"),
        ({"mixed_precision": "fp16"}, "'mixed_precision' option must be 'no' or 'bf16' for model 'ctgan'"),
        ({"stream": True}, "'stream' option must be False for model 'ctgan'"),
    ]:
        with pytest.raises(InvalidOptionError, match=match):
            train_torch_model(
                model_name="ctgan", model_class=ctgan, model_config={}, layout=None, data=None,
                options=TrainOptions(**opts), scaling=ScalingOptions(),
            )


class AutocastToy(SequenceToy):
    """Reports whether its step ran under bfloat16 autocast (the dtype of its linear map's output)."""

    name: ClassVar[str] = "autocast_toy"
    supports_fp16: ClassVar[bool] = True

    def train_step(self, batch: torch.Tensor, optimizers, generator: torch.Generator) -> dict[str, float]:
        out = self.nets["net"](batch)
        loss = ((out.float() - batch) ** 2).mean()
        optimizers["opt"].zero_grad()
        loss.backward()
        optimizers["opt"].step()
        return {"loss": float(loss.detach()), "bf16": float(out.dtype == torch.bfloat16)}


def test_fp16_needs_gpu_workers(ray_session):
    with pytest.raises(InvalidOptionError, match="'mixed_precision' option must be 'no' on CPU workers.*Got 'fp16'"):
        _train(AutocastToy, _sequences(8), mixed_precision="fp16")


@pytest.mark.skipif(not native_bfloat16(torch.device("cpu")), reason="this CPU would emulate bfloat16")
def test_bf16_trains_under_autocast_on_cpus_that_multiply_it_natively(ray_session):
    result = _train(AutocastToy, _sequences(16), mixed_precision="bf16", max_steps=2, report_every_steps=1)
    assert [row["bf16"] for row in result.history] == [1.0, 1.0]
    # Autocast computes in bfloat16; the weights it updates stay float32.
    assert result.state_tensors["net.weight"].dtype == torch.float32
    # Without the option the same step runs in float32.
    model = AutocastToy(ToyConfig(), ToyLayout())
    runner = StepRunner(model, model.configure_optimizers(), TrainOptions(), torch.device("cpu"))
    assert runner.step([torch.from_numpy(_sequences(4))], torch.Generator().manual_seed(0))["bf16"] == 0.0


def test_bf16_is_refused_on_cpus_that_would_emulate_it(ray_session, monkeypatch):
    import engine.core.precision

    monkeypatch.setattr(engine.core.precision, "native_bfloat16", lambda device: False)
    with pytest.raises(InvalidOptionError, match="'mixed_precision' option must be 'no' on CPU workers without native "
                                                 "bfloat16.*Got 'bf16'"):
        _train(SequenceToy, _sequences(8), mixed_precision="bf16")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_steps": 0}, "The 'max_steps' option must be an integer >= 1 or None"),
        ({"lr_schedule": "step"}, "The 'lr_schedule' option must be one of 'constant', 'cosine', 'linear'. Got 'step'"),
        ({"warmup_steps": -1}, "The 'warmup_steps' option must be an integer >= 0"),
        ({"grad_accumulation_steps": 0}, "The 'grad_accumulation_steps' option must be an integer >= 1"),
        ({"mixed_precision": "fp8"}, "The 'mixed_precision' option must be one of 'no', 'bf16', 'fp16'"),
        ({"report_every_steps": 0}, "The 'report_every_steps' option must be an integer >= 1"),
        ({"stream": "yes"}, "The 'stream' option must be True or False"),
    ],
)
def test_new_train_options_are_validated(options, message):
    with pytest.raises(InvalidOptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainOptions(**options)


def test_schedule_factors():
    cosine, linear = ScheduleFactor("cosine", 0, 10), ScheduleFactor("linear", 4, 10)
    assert cosine(0) == 1.0 and cosine(5) == pytest.approx(0.5) and cosine(10) == pytest.approx(0.0, abs=1e-15)
    assert [linear(s) for s in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert linear(4) == 1.0 and linear(7) == pytest.approx(0.5) and linear(10) == 0.0
    assert ScheduleFactor("constant", 1, None)(0) == 0.5 and ScheduleFactor("constant", 1, None)(1) == 1.0
    assert math.isclose(ScheduleFactor("cosine", 2, 6)(2), 1.0)


def test_a_resumed_schedule_continues_at_the_step_it_stopped():
    """A StepRunner rebuilt from a checkpoint's state continues the schedule where it was; a run resumed
    with more steps stretches its decay over the new total."""

    def runner_for(total: int):
        torch.manual_seed(0)
        model = LinearToy(ToyConfig(lr=0.1), ToyLayout())
        optimizers = model.configure_optimizers()
        options = TrainOptions(max_steps=total, lr_schedule="linear", warmup_steps=1)
        return StepRunner(model, optimizers, options, torch.device("cpu"), build_schedulers(optimizers, options, total))

    batch = [torch.from_numpy(_regression_rows(8))]
    gen = torch.Generator().manual_seed(0)
    straight = runner_for(10)
    for _ in range(3):
        straight.step(batch, gen)
    saved, opt_state = straight.state(), straight.optimizers["opt"].state_dict()
    resumed = runner_for(10)
    resumed.optimizers["opt"].load_state_dict(opt_state)
    resumed.load_state(saved, step=3)
    for _ in range(2):
        assert resumed.optimizers["opt"].param_groups[0]["lr"] == straight.optimizers["opt"].param_groups[0]["lr"]
        straight.step(batch, gen), resumed.step(batch, gen)
    longer = runner_for(20)
    longer.load_state(saved, step=3)
    assert longer.optimizers["opt"].param_groups[0]["lr"] == pytest.approx(0.1 * ScheduleFactor("linear", 1, 20)(3))
    fresh = runner_for(10)
    fresh.load_state({}, step=3)  # a checkpoint without schedules (a constant run) resumed with one
    assert fresh.optimizers["opt"].param_groups[0]["lr"] == pytest.approx(0.1 * ScheduleFactor("linear", 1, 10)(3))


def test_a_decay_ends_with_the_time_budget_when_it_comes_before_the_last_step():
    linear = ScheduleFactor("linear", 0, 1000)
    linear.budget_spent = 0.5
    assert linear(10) == pytest.approx(0.5)  # half the budget spent, 1% of the steps taken
    assert linear(750) == pytest.approx(0.25)  # the steps ahead of the budget
    linear.budget_spent = 1.7  # the last step may overshoot the budget
    assert linear(10) == 0.0
    unbounded = ScheduleFactor("cosine", 2, None)  # a streamed run: no total, only the budget
    unbounded.budget_spent = 0.5
    assert unbounded(1) == pytest.approx(2 / 3) and unbounded(100) == pytest.approx(0.5)
    constant = ScheduleFactor("constant", 0, 10)
    constant.budget_spent = 0.9
    assert constant(5) == 1.0


def test_a_run_resumed_with_a_new_budget_decays_the_rest_of_the_way_over_it():
    def runner():
        torch.manual_seed(0)
        model = LinearToy(ToyConfig(lr=0.1), ToyLayout())
        optimizers = model.configure_optimizers()
        options = TrainOptions(epochs=100_000, lr_schedule="linear", time_budget=60)
        return StepRunner(model, optimizers, options, torch.device("cpu"), build_schedulers(optimizers, options, 10**8))

    first = runner()
    first.step([torch.from_numpy(_regression_rows(8))], torch.Generator().manual_seed(0))
    first.spend_budget(0.6)
    assert first.optimizers["opt"].param_groups[0]["lr"] == pytest.approx(0.04)
    resumed = runner()
    resumed.load_state(first.state(), step=1)
    assert resumed.optimizers["opt"].param_groups[0]["lr"] == pytest.approx(0.04)  # no jump back up
    resumed.spend_budget(0.5)  # half the new budget: half of the 40% of the decay left
    assert resumed.optimizers["opt"].param_groups[0]["lr"] == pytest.approx(0.02)


def test_a_budgeted_run_decays_its_learning_rate_over_the_budget(ray_session):
    """Its epochs are only a bound (a million steps here): without the budget's share the
    schedule would keep the learning rate of the start to the end."""
    result = _train(
        SequenceToy, _sequences(40), epochs=200_000, time_budget=3, lr_schedule="linear",
        report_every_steps=5, lr=0.2,
    )
    rates = [row["lr"] for row in result.history]
    assert result.history[-1]["stopped_by"] == "time_budget" and len(rates) >= 3
    assert rates[0] > 0.1 and rates[-1] < 0.05
    assert all(a >= b for a, b in zip(rates, rates[1:]))


# --------------------------------------------------------------------------- phases
def test_phases_are_planned_in_their_units():
    options = TrainOptions(epochs=3)
    assert [(p.name, p.unit, p.length) for p in plan_phases(PhasedToy.PHASES, options)] == [
        ("embed", "steps", 7), ("supervise", "epochs", 2), ("joint", "steps", 6)
    ]
    assert [(p.unit, p.length) for p in plan_phases([Phase("train")], TrainOptions(max_steps=9))] == [("steps", 9)]
    with pytest.raises(PhaseError, match="distinct names"):
        plan_phases([Phase("a"), Phase("a")], options)
    with pytest.raises(ValueError, match="not both"):
        Phase("a", epochs=1, steps=1)


def test_phases_resume_mid_phase_exactly_where_they_stopped(ray_session, tmp_path):
    """Three phases (7 steps, 2 epochs, 6 steps) of 5 batches an epoch, a cosine schedule, a row every
    2 steps and a checkpoint every row. A worker fails before step 5 (inside the first phase and inside
    a data epoch); the restarted run resumes from step 4 and ends bit-identical to a run without failure."""
    data = _sequences(40)
    opts = {"report_every_steps": 2, "checkpoint_every": 1, "lr_schedule": "cosine", "warmup_steps": 3, "lr": 0.05}
    straight = _train(PhasedToy, data, storage_path=str(tmp_path / "a"), run_name="straight", **opts)
    marker = tmp_path / "failed-once"
    resumed = _train(
        PhasedToy, data, storage_path=str(tmp_path / "b"), run_name="resumed", max_failures=1,
        hooks={"fail_once_at_step": 5, "fail_once_marker": str(marker)}, **opts,
    )
    assert marker.exists() and resumed.resumed_at == [4]  # the run counts steps: resumed after step 4
    rows = _rows_without_seconds(straight.history)
    assert [(r["phase"], r.get("step"), r.get("epoch")) for r in rows] == [
        ("embed", 2, None), ("embed", 4, None), ("embed", 6, None), ("embed", 7, None),  # ends mid-epoch 2
        ("supervise", None, 2), ("supervise", None, 3),  # fresh epochs; the first one full after 7 steps
        ("joint", 19, None), ("joint", 21, None), ("joint", 23, None),
    ]
    for r in rows:
        assert [k for k in r if k.startswith("loss")] == [f"loss_{r['phase']}"]
    assert straight.steps_completed == 23 and straight.epochs_completed == 4
    assert _rows_without_seconds(resumed.history) == rows
    assert resumed.steps_completed == 23
    for key, value in straight.state_tensors.items():
        assert torch.equal(resumed.state_tensors[key], value), key


def test_in_memory_rows_are_shared_out_equally_and_interleaved():
    from engine.training.loop import _rank_rows

    arrays = {"x": np.arange(11)[:, None] * np.ones((1, 3)), "y": np.arange(11)}
    shards = [_rank_rows(arrays, r, 3) for r in range(3)]
    assert [list(s["y"]) for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]  # 11 // 3 rows each; 9 and 10 left out
    assert shards[1]["x"].shape == (3, 3) and np.array_equal(shards[1]["x"][:, 0], [1, 4, 7])
    assert np.array_equal(_rank_rows({"data": np.arange(5)}, 0, 1), np.arange(5))  # one worker: every row, in order
    assert _rank_rows({"data": np.arange(2)}, 0, 3) is None
