"""The engine's one training loop, on Ray Train.

Every torch model of the engine trains here: the per-worker loop builds the
model from its config, puts its networks on the worker's device and wraps
each of them with DDP (through ``ray.train.torch.prepare_model``), reads the
worker's shard (materialised in the structure the data had, or streamed
afresh each epoch), and calls the model's ``train_step`` through
:class:`~engine.training.steps.StepRunner` (gradient accumulation, autocast,
learning-rate schedules). It runs the model's phases in order, each for its
epochs or steps, reports a history row every epoch (or every
``report_every_steps`` steps) and checkpoints every N rows, anywhere inside a
phase or a data epoch. Local runs use the same loop on a local Ray instance:
there is no second loop.
"""
from __future__ import annotations

import collections
import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.contract import ShardStream, batch_tensor
from engine.core.errors import InvalidDataError, InvalidOptionError, SynthError
from engine.training.checkpoint import (
    RankRandomState,
    TrainingState,
    load_checkpoint,
    load_rank_random_state,
    rank_digests,
    save_checkpoint,
    save_rank_random_state,
    state_digest,
)
from engine.training.config import ScalingOptions, TrainOptions
from engine.training.selection import BestState
from engine.training.steps import StepRunner, build_schedulers, plan_phases, run_unit, total_steps, windows

# Ray Train defaults tuned for short tabular runs; set any of them in the environment to override.
# They are read on the driver and propagated to the controller and workers.
RAY_TRAIN_DEFAULTS = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25",  # the controller polls workers; 2 s adds seconds to every run
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",  # otherwise a worker's print() shows twice (with --verbose; progress goes through engine.training.progress)
    "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
}

ENCODED_COLUMN = "data"  # the column of an in-memory array in the training Dataset (ray.data.from_numpy's name)
BLOCK_ROWS, BLOCK_BYTES = 4096, 64 << 20  # at most per block of in-memory data turned into a Dataset


class TrainingError(SynthError, RuntimeError):
    """Training failed; the message carries the root cause from the worker."""


@dataclass
class TrainResult:
    """The final state of a training run.

    ``resumed_at`` lists the epochs completed (optimisation steps, for a run
    counted in steps) at each resumption from a checkpoint (after a worker
    failure or a restart with the same run name), read from the checkpoint
    itself. ``epochs_completed`` counts data epochs read to their end,
    ``steps_completed`` optimisation steps. ``rank_state_digests`` maps each worker
    rank to the digest of the model state it held at the final checkpoint:
    with DDP they are all equal to ``state_digest(state_tensors)``.
    ``checkpoint_path`` is None for an unnamed run, whose storage is temporary.
    """

    state_tensors: dict[str, torch.Tensor]
    extra_state: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_completed: int = 0
    checkpoint_path: str | None = None
    resumed_at: list[int] = field(default_factory=list)
    rank_state_digests: dict[int, str] = field(default_factory=dict)
    steps_completed: int = 0


def _worker_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint32)[0])


def _structured(columns: Mapping[str, Any]) -> Any:
    """A Dataset's columns in the structure of the data: the array alone for the one column
    ``"data"`` (an in-memory array), else the dict of columns."""
    return columns[ENCODED_COLUMN] if list(columns) == [ENCODED_COLUMN] else dict(columns)


def _read_shard(shard: Any) -> Any:
    """This worker's shard, materialised on the worker (never on the driver); None when it has no rows.

    Each column comes back as one array of the shape and dtype it had (a tensor column of
    ``(T, C)`` samples as ``(n, T, C)``).
    """
    parts = [b for b in shard.iter_batches(batch_size=None, batch_format="numpy") if len(next(iter(b.values()), ()))]
    if not parts:
        return None
    return _structured({c: np.concatenate([p[c] for p in parts]) for c in parts[0]})


def _rank_rows(arrays: Mapping[str, np.ndarray], rank: int, world: int) -> Any:
    """Rank ``rank``'s rows of in-memory training arrays; None when it gets none.

    Every rank takes ``n // world`` rows, interleaved (rows ``rank``, ``rank + world``, ...),
    so that each shard mixes the whole data set even when it is sorted, and all ranks run
    the same number of steps (data-parallel steps must match); at most ``world - 1`` rows
    are left out, as an equal Ray Data split leaves them.
    """
    n = len(next(iter(arrays.values())))
    per_rank = n // world
    if per_rank == 0:
        return None
    return _structured({c: np.ascontiguousarray(a[rank : per_rank * world : world]) for c, a in arrays.items()})


class _RayShardStream(ShardStream):
    """A worker's Ray Train dataset shard as a :class:`ShardStream`: one ``iter_batches`` pass per epoch."""

    def __init__(self, shard: Any):
        self.shard = shard

    def iter_batches(
        self, batch_size: int, *, shuffle_buffer_rows: int = 0, seed: int | None = None, drop_last: bool = True
    ) -> Iterator[Any]:
        shuffle = shuffle_buffer_rows > 0
        for b in self.shard.iter_batches(
            batch_size=batch_size,
            batch_format="numpy",
            drop_last=drop_last,
            local_shuffle_buffer_size=max(shuffle_buffer_rows, batch_size) if shuffle else None,
            local_shuffle_seed=seed if shuffle else None,
        ):
            yield _structured({c: batch_tensor(a) for c, a in b.items()})


def _batches_per_epoch(sampler: Any) -> int | None:
    """``len(sampler)``, or None for a sampler that only knows by reading (a stream)."""
    try:
        return len(sampler)
    except TypeError:
        return None


def _too_few_batches(rank: int, batches: int | None, options: TrainOptions) -> str:
    got = "no complete batch" if not batches else f"{batches} batches"
    return (
        f"Training worker {rank}'s shard gives {got} of batch_size={options.batch_size} per epoch, fewer than the "
        f"grad_accumulation_steps={options.grad_accumulation_steps} batches of one optimisation step: lower "
        "batch_size or grad_accumulation_steps, or train on more rows."
    )


@dataclass
class _Position:
    """Where a run is: what a checkpoint records and a resumed run starts from."""

    epoch: int = 0  # data epochs read to their end
    step: int = 0  # optimisation steps
    phase: int = 0  # index of the phase in progress
    progress: int = 0  # epochs or steps (the phase's unit) done in that phase
    batches: int = 0  # batches of the data epoch in progress trained on (0: between epochs)

    def next_phase(self) -> None:
        # A phase starts a fresh data epoch: a phase in steps drops the rest of its last one.
        self.phase, self.progress, self.batches = self.phase + 1, 0, 0

    def count(self, unit: str) -> int:
        return self.step if unit == "steps" else self.epoch


def train_loop_per_worker(cfg: dict[str, Any]) -> None:
    """The Ray Train worker function (plain PyTorch with Ray at its edges)."""
    import ray.train
    import ray.train.torch

    from engine.core.runtime import torch_threads

    options = TrainOptions(**cfg["options"])
    if not cfg.get("verbose"):
        _quiet_worker_logs()
    # Ray starts workers with one intra-op thread whatever CPUs they reserved: use what was reserved
    # (counted here, on the worker's node, which may have other cores than the driver's).
    torch.set_num_threads(torch_threads(cfg.get("cpus_per_worker", 1)))
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    seed = _worker_seed(options.seed, rank)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    step_gen = torch.Generator().manual_seed(seed)

    model_cls = cfg["model_class"]
    model = model_cls(model_cls.config_from_dict(cfg["model_config"]), model_cls.layout_class.from_dict(cfg["layout"]))
    if cfg.get("initial_state") is not None:
        # A pretrained start: every rank begins from the same weights (a checkpoint, if any, wins below).
        model.load_state_tensors(ray.get(cfg["initial_state"]))
    device = ray.train.torch.get_device()
    model.to(device)
    if world > 1 and device.type == "cuda":
        # Batch statistics over all workers' batches; SyncBatchNorm needs GPUs, so on CPU the
        # BatchNorm layers stay and DDP broadcasts rank 0's running statistics each forward.
        for key in list(model.nets):
            model.nets[key] = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model.nets[key])
    for key in list(model.nets):
        # A DDP wrapper with 2+ workers, the bare module with one: models call unwrapped() where it matters.
        model.nets[key] = ray.train.torch.prepare_model(model.nets[key], move_to_device=device)
    if world > 1:
        _broadcast_shadow_nets(model)
    optimizers = model.configure_optimizers()

    if cfg.get("arrays") is not None:
        data: Any = _rank_rows(ray.get(cfg["arrays"]), rank, world)
    elif options.stream:
        data = _RayShardStream(ray.train.get_dataset_shard("train"))  # read afresh every epoch, never held whole
    else:
        data = _read_shard(ray.train.get_dataset_shard("train"))
    if data is None:
        raise TrainingError(f"Training worker {rank} received no rows: the data set has fewer rows than workers.")
    sampler = model.batch_sampler(data, options.batch_size, rng)
    k = options.grad_accumulation_steps
    batches_per_epoch = _batches_per_epoch(sampler)
    steps_per_epoch = None if batches_per_epoch is None else batches_per_epoch // k
    if steps_per_epoch == 0:
        raise TrainingError(_too_few_batches(rank, batches_per_epoch, options))
    plan = plan_phases(model.phases(), options)
    unit = run_unit(plan)
    schedulers = build_schedulers(optimizers, options, total_steps(plan, steps_per_epoch))
    runner = StepRunner(model, optimizers, options, device, schedulers)

    pos, history, resumed_at = _Position(), [], []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            st = load_checkpoint(d)
            mine = load_rank_random_state(d, rank)
        model.load_state_tensors(st.model_tensors)
        for name, opt in optimizers.items():
            opt.load_state_dict(st.optimizers[name])
        # After the optimisers, whose learning rates the schedules then own again.
        runner.load_state({"schedulers": st.schedulers, "grad_scaler": st.grad_scaler}, st.step)
        model.load_extra_state(st.extra_state)
        pos = _Position(epoch=st.epoch, step=st.step, phase=st.phase, progress=st.phase_progress, batches=st.epoch_batches)
        history = list(st.history)
        resumed_at = [*st.resumed_at, pos.count(unit)]
        if mine is not None:
            rng.bit_generator.state = mine.numpy_rng
            step_gen.set_state(mine.torch_rng)
            torch.set_rng_state(mine.torch_global_rng)
        else:
            # A rank the checkpoint did not have (more workers than before): a fresh stream per
            # resumption point, so it does not replay the batches of epoch 0.
            fresh = _worker_seed(options.seed + 1_000_003 * st.epoch + st.step, rank)
            rng.bit_generator.state = np.random.default_rng(fresh).bit_generator.state  # in place: the sampler holds rng
            step_gen.manual_seed(fresh)
            torch.manual_seed(fresh)
    start_epoch = pos.epoch

    # The driver's display counts the epochs of a one-phase run with a known number of steps per epoch;
    # runs in steps or phases, and streamed epochs, report their history rows only.
    counts_epochs = len(plan) == 1 and plan[0].unit == "epochs" and plan[0].length == options.epochs
    bar = _progress_bar(cfg.get("progress"), options, rank, start_epoch, steps_per_epoch) if counts_epochs and steps_per_epoch else None  # says "resuming" too
    fail_at = cfg.get("fail_once_at_epoch")  # test hook: a worker raises once, to exercise recovery
    fail_at_step = cfg.get("fail_once_at_step")  # the same, before an optimisation step
    sums: dict[str, float] = {}
    period_steps, started = 0, time.perf_counter()
    # Early stopping: a validator scores the model on rank 0 (every rank gets the score), the best state is kept.
    validator = cfg.get("validator")
    best = BestState(options.patience) if validator is not None else None
    stop_reason: str | None = None  # "time_budget" or "early_stopping" once the run must end

    def report(head: dict[str, Any], phase_name: str) -> None:
        """Close a reporting period: a history row, and a checkpoint every ``checkpoint_every`` rows."""
        nonlocal sums, period_steps, started, stop_reason
        if world > 1:
            _sync_buffers(model, world)
        row = {
            **head,
            **({"phase": phase_name} if len(plan) > 1 else {}),
            **{key: value / max(period_steps, 1) for key, value in sums.items()},
            "seconds": time.perf_counter() - started,
        }
        sums, period_steps = {}, 0
        last = stop_reason is not None or (pos.phase == len(plan) - 1 and pos.progress >= plan[-1].length)
        if best is not None and (last or (len(history) + 1) % options.validate_every == 0):
            score = _agreed_score(validator(model) if rank == 0 else 0.0, world)
            row["validation_score"] = score
            best.offer(row.get("epoch", pos.epoch), score, model.state_tensors)
            if best.should_stop and not last:
                stop_reason, last = "early_stopping", True
            if last and best.best_state is not None:
                # The run ends with the weights of its best validation, not its last ones.
                model.load_state_tensors(best.best_state)
                row.update(chosen_epoch=best.best_epoch, chosen_score=best.best_score)
        if last and stop_reason is not None:
            row["stopped_by"] = stop_reason
        history.append(row)
        if bar is not None:
            bar.epoch(row)  # the driver draws the losses: on its bar, or one line per epoch in a log
        if last or len(history) % options.checkpoint_every == 0:
            # Every rank adds its own random state (and a digest of the state it holds) to the checkpoint.
            with tempfile.TemporaryDirectory() as tmp:
                tensors = model.state_tensors()
                save_rank_random_state(
                    tmp,
                    rank,
                    RankRandomState(
                        # Inside a data epoch, the state it began from: a resumed run draws it again and skips.
                        numpy_rng=epoch_start_state if pos.batches else rng.bit_generator.state,
                        torch_rng=step_gen.get_state(),
                        torch_global_rng=torch.get_rng_state(),
                        state_digest=state_digest(tensors),
                    ),
                )
                if rank == 0:
                    save_checkpoint(
                        tmp,
                        TrainingState(
                            epoch=pos.epoch,
                            model_tensors=tensors,
                            optimizers={key: o.state_dict() for key, o in optimizers.items()},
                            history=history,
                            extra_state=model.extra_state(),
                            resumed_at=resumed_at,
                            step=pos.step,
                            phase=pos.phase,
                            phase_progress=pos.progress,
                            epoch_batches=pos.batches,
                            **runner.state(),
                        ),
                    )
                ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(row)
        started = time.perf_counter()

    epoch_start_state = rng.bit_generator.state  # numpy's state as the data epoch in progress began
    budget = options.time_budget
    training_started = time.perf_counter()  # the time budget counts from here
    steps_left: Iterator[list[Any]] | None = None  # the optimisation steps left in that epoch
    if pos.batches:
        # Resumed inside a data epoch: draw it again from its start and skip what was trained on
        # (batches are drawn lazily, so the skipped ones replay the sampler's random draws).
        epoch_start_state = rng.bit_generator.state
        drawn = iter(sampler.epoch())
        collections.deque(itertools.islice(drawn, pos.batches), maxlen=0)
        steps_left = windows(drawn, k)
    while pos.phase < len(plan):
        phase = plan[pos.phase]
        model.phase = phase.name
        if pos.progress >= phase.length:  # the phase is complete (or the resumed run asks for less of it)
            pos.next_phase()
            steps_left = None
            continue
        if steps_left is None:
            if fail_at is not None and pos.epoch == fail_at and rank == 0 and _first_failure(cfg["fail_once_marker"]):
                raise RuntimeError(f"injected failure at epoch {pos.epoch}")
            if cfg.get("epoch_log"):  # test hook: which epochs ran, and from which random state
                _log_epoch_start(f"{cfg['epoch_log']}.rank{rank}", pos.epoch + 1, rng, step_gen)
            epoch_start_state = rng.bit_generator.state
            steps_left = windows(sampler.epoch(), k)
        phase_over = False
        for batches in steps_left:
            if fail_at_step is not None and pos.step == fail_at_step and rank == 0 and _first_failure(cfg["fail_once_marker"]):
                raise RuntimeError(f"injected failure at step {pos.step}")
            metrics = runner.step(batches, step_gen)
            pos.step += 1
            pos.batches += k
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value
            period_steps += 1
            if bar is not None:
                bar.step()
            if phase.unit == "steps":
                pos.progress += 1
                phase_over = pos.progress == phase.length
                if phase_over or pos.progress % options.report_every_steps == 0:
                    report({"step": pos.step}, phase.name)
                    if stop_reason is not None:
                        break
                if phase_over:
                    # The checkpoint keeps the phase, complete, and the data epoch it stopped in: a run
                    # resumed with a longer phase continues that epoch; else the next phase starts afresh.
                    break
            # Checked after every step (all ranks agree), so the budget is kept within one step, not one epoch.
            if budget is not None:
                spent = _agreed_max(time.perf_counter() - training_started, world) / budget
                runner.spend_budget(spent)  # a decaying learning rate reaches its end with the budget
                if spent >= 1.0:
                    stop_reason = "time_budget"
                    break
        steps_left = None
        if stop_reason is not None:
            if not history or history[-1].get("stopped_by") is None:
                # The epoch in progress, as a fraction of epochs, when the budget cut it short.
                done = pos.epoch + (pos.batches / batches_per_epoch if batches_per_epoch and pos.batches else 0)
                report({"epoch": round(done, 3), "step": pos.step}, phase.name)
            break
        if phase_over:
            continue
        # The data epoch ran to its end.
        if pos.batches == 0:
            raise TrainingError(_too_few_batches(rank, 0, options))  # a stream shorter than one step: no progress
        pos.epoch += 1
        pos.batches = 0
        if phase.unit == "epochs":
            pos.progress += 1
            report({"epoch": pos.epoch}, phase.name)
            if stop_reason is not None:  # early stopping decided at this validation
                break
    if bar is not None:
        bar.close()


def _agreed_max(value: float, world: int) -> float:
    """The largest ``value`` over the ranks: every rank must stop at the same step (or DDP waits
    forever) and set the same learning rate (or their weights drift apart)."""
    if world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def _agreed_score(score: float, world: int) -> float:
    """Rank 0's validation score, on every rank (the others pass a placeholder)."""
    if world == 1:
        return float(score)
    import torch.distributed as dist

    t = torch.tensor([float(score)], dtype=torch.float64)
    dist.broadcast(t, src=0)
    return float(t.item())


def _broadcast_shadow_nets(model: Any) -> None:
    """Give every rank rank 0's shadow modules (EMA copies), as DDP gives it rank 0's trained weights.

    A model takes its EMA copy at construction, from its rank's own random initialisation:
    without this the ranks' averages would differ for the whole run.
    """
    import torch.distributed as dist

    for module in model.shadow_nets.values():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def _sync_buffers(model: Any, world: int) -> None:
    """Make every rank's buffers (BatchNorm running statistics) equal: the mean over ranks.

    DDP broadcasts rank 0's buffers at the start of each wrapped forward, but a forward
    through the bare module (the discriminator scoring fakes for the generator's loss)
    updates each rank's statistics on its own batch afterwards, so the ranks drift apart.
    Integer buffers (batch counters) are equal on every rank and are broadcast from rank 0.
    """
    import torch.distributed as dist

    modules = [model.unwrapped(key) for key in model.nets] + list(model.shadow_nets.values())
    for module in modules:
        for buf in module.buffers():
            if torch.is_floating_point(buf):
                dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                buf.div_(world)
            else:
                dist.broadcast(buf, src=0)


def _log_epoch_start(path: str, epoch: int, rng: np.random.Generator, step_gen: torch.Generator) -> None:
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(rng.bit_generator.state, sort_keys=True).encode())
    digest.update(step_gen.get_state().numpy().tobytes())
    digest.update(torch.get_rng_state().numpy().tobytes())
    with open(path, "a") as f:
        f.write(json.dumps({"epoch": epoch, "random_state": digest.hexdigest(), "threads": torch.get_num_threads()}) + "\n")


def _progress_bar(board: Any, options: TrainOptions, rank: int, start_epoch: int, steps_per_epoch: int) -> Any:
    """Rank 0's progress reporter, which the driver draws (``engine.training.progress``); None when hidden.

    The driver shows one bar with the last losses on a terminal, one line per epoch in a log.
    """
    if rank != 0 or not options.show_progress or board is None:
        return None
    from engine.training.progress import WorkerProgress

    return WorkerProgress(board, start_epoch=start_epoch, epochs=options.epochs, steps_per_epoch=steps_per_epoch)


def _quiet_worker_logs() -> None:
    """Ray Train logs each ``report`` at INFO on the worker ("Reporting training result ...") through a
    logger named after its file, outside ``ray.train`` and thus outside ``LoggingConfig``: keep it to
    warnings, as the rest of Ray Train's logs (it still reaches the console if Ray copies worker output)."""
    import logging

    try:
        from ray.train.v2._internal.execution import context as train_context
    except ImportError:  # another Ray Train version: nothing to quiet
        return
    for name in (train_context.__file__, train_context.__name__):
        logging.getLogger(name).setLevel(logging.WARNING)


def _first_failure(marker: str) -> bool:
    from pathlib import Path

    p = Path(marker)
    if p.exists():
        return False
    p.write_text("failed once")
    return True


def train_torch_model(
    *,
    model_name: str,
    model_class: type,
    model_config: Mapping[str, Any],
    layout: Any,
    data: Any,
    options: TrainOptions,
    scaling: ScalingOptions,
    initial_state: Mapping[str, torch.Tensor] | None = None,
    validator: Any = None,
    _test_hooks: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a torch model on encoded data with Ray Train; return the final state.

    ``model_class`` is a :class:`~engine.core.contract.TorchSynthModel` subclass (handed to the
    workers as it is, so a model registered only in this process trains too); ``model_name``
    names the run. ``layout`` is the model's layout (``model_class.layout_class``).

    ``data`` is what the model's batch sampler reads: a NumPy array of samples of any
    rank (a float32 matrix of encoded rows, ``(N, T, C)`` sequences), a dict of
    equal-length arrays (``{"x": (N, T, C), "mask": (N, T)}``), or a Ray Dataset (a
    column ``"data"`` stands for one array, other columns for a dict). In-memory data
    becomes a Dataset; each worker gets its shard back in the same structure, shapes
    and dtypes, or, with ``options.stream``, a stream of it read afresh each epoch.
    The options a model must support (gradient accumulation, fp16, streaming) and
    mixed precision that CPU workers would emulate are refused here, before Ray starts.

    A run started again with the same ``run_name``
    and ``storage_path`` resumes from its last checkpoint; a named run without
    ``storage_path`` keeps its checkpoints in :func:`default_storage_path`, an
    unnamed one in a temporary folder removed afterwards. On a cluster of
    several nodes the checkpoints need a shared ``storage_path`` (NFS mount or
    ``s3://`` / ``gs://`` URI): anything else raises ``SharedStorageError``.

    ``validator`` (picklable; called on rank 0 as ``validator(model) -> float``, higher is
    better) turns on early stopping: see ``TrainOptions.validate_every`` and ``patience``.
    The returned state is then that of the best validation, and the history rows carry
    ``validation_score`` (and, on the last row, ``chosen_epoch``, ``chosen_score``).
    """
    _check_model_supports(model_class, model_name, options)
    for key, value in RAY_TRAIN_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import ray
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    from engine.core.runtime import alive_nodes, largest_node_cpus, require_shared_location, verbose
    from engine.training.progress import DriverProgress

    if not ray.is_initialized():
        # As Ray Data would on first use; the synthesizers wrap this call in engine.core.runtime.ray_session.
        ray.init(logging_level="WARNING")
    nodes = alive_nodes()
    use_gpu = scaling.use_gpu
    if use_gpu is None:
        # Auto only sees GPUs that exist now: an autoscaling GPU group scaled to zero needs use_gpu=True.
        use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if options.mixed_precision != "no" and not use_gpu and not _cpu_autocast_pays(options.mixed_precision):
        raise InvalidOptionError(
            "The 'mixed_precision' option must be 'no' on CPU workers without native bfloat16 (this run has "
            f"use_gpu={scaling.use_gpu!r} and no GPU to use; 'bf16' runs on CPUs with AVX-512 BF16 or AMX, "
            f"'fp16' on GPUs only). Got {options.mixed_precision!r} instead."
        )
    cpus = scaling.cpus_per_worker
    # Before any Ray Data call: building the Dataset runs a short task that holds a CPU, and the free
    # CPUs read during it would be one short (a worker on a 2-CPU laptop got 1 CPU and 1 thread).
    if cpus is None:
        cpus = auto_cpus_per_worker(ray.available_resources().get("CPU", 1), scaling.num_workers, largest_node_cpus(nodes))
    _check_workers_fit(scaling.num_workers, cpus, nodes)
    data_context = ray.data.DataContext.get_current()
    data_context.enable_progress_bars = False  # the training bar and per-epoch loss lines are the progress report
    # In-memory data that each worker reads whole goes through the object store, one copy
    # per node, and each worker takes its share of the rows: no Ray Data pipeline to start
    # (its actors cost seconds per run). Streamed runs and Ray Datasets go through Ray Data.
    in_memory = not isinstance(data, ray.data.Dataset) and not options.stream
    arrays = training_arrays(data) if in_memory else None
    rows = None if arrays is None else len(next(iter(arrays.values())))
    if rows is not None and rows < scaling.num_workers:
        # Known before Ray Train starts: a worker would find its shard empty only seconds later.
        raise TrainingError(
            f"The training data has {rows} row(s) for {scaling.num_workers} workers: a worker would receive no rows "
            "(give more rows or fewer workers)."
        )
    arrays_ref = ray.put(arrays) if arrays is not None else None
    datasets = {} if in_memory else {"train": data if isinstance(data, ray.data.Dataset) else dataset_from_arrays(data)}
    require_shared_location(
        options.storage_path, option="storage_path", what="the training checkpoints", writable=True, nodes=nodes
    )
    temporary = None
    if options.storage_path:
        storage = options.storage_path
    elif options.run_name:
        storage = default_storage_path()  # stable, so that the same run_name resumes
    else:
        # An unnamed run can never be resumed: its checkpoints live only as long as the call.
        storage = temporary = tempfile.mkdtemp(prefix="synth-train-")
    name = options.run_name or f"{model_name}-{uuid.uuid4().hex[:8]}"
    progress = DriverProgress(model_name, options.epochs, enabled=options.show_progress, budget_s=options.time_budget)
    cfg = {
        "progress": progress.open(),  # the board rank 0 reports to; the driver draws it
        "verbose": verbose(),
        "model_name": model_name,
        "model_config": dict(model_config),
        "layout": layout.to_dict(),
        "options": asdict(options),
        "model_class": model_class,
        # Pretrained weights go through the object store once, not pickled into every worker's config.
        "initial_state": None if initial_state is None else ray.put(dict(initial_state)),
        "arrays": arrays_ref,
        "cpus_per_worker": cpus,
        "validator": validator,
        **dict(_test_hooks or {}),
    }
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=cfg,
        scaling_config=ray.train.ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": cpus, **({"GPU": 1} if use_gpu else {})},
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=options.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            logging_config=ray.train.LoggingConfig(log_level="INFO" if verbose() else "WARNING"),
        ),
        datasets=datasets,
    )
    try:
        try:
            result = trainer.fit()
        except ray.train.TrainingFailedError as exc:
            raise TrainingError(f"Training of {model_name!r} failed: {_root_cause(exc)}") from None
        if result.checkpoint is None:
            raise TrainingError(f"Training of {model_name!r} finished without a checkpoint.")
        with result.checkpoint.as_directory() as d:
            st = load_checkpoint(d)
            digests = rank_digests(d)
    finally:
        progress.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return TrainResult(
        state_tensors=st.model_tensors,
        extra_state=st.extra_state,
        history=st.history,
        epochs_completed=st.epoch,
        checkpoint_path=None if temporary is not None else result.checkpoint.path,
        resumed_at=st.resumed_at,
        rank_state_digests=digests,
        steps_completed=st.step,
    )


def _cpu_autocast_pays(mixed_precision: str) -> bool:
    """Whether CPU workers can run ``mixed_precision``: bfloat16 where this CPU multiplies it natively.

    Elsewhere bfloat16 is emulated, slower than float32. On a cluster the driver's CPU stands for the workers'.
    """
    from engine.core.precision import native_bfloat16

    return mixed_precision == "bf16" and native_bfloat16(torch.device("cpu"))


def _check_model_supports(model_class: type, model_name: str, options: TrainOptions) -> None:
    """Refuse, before Ray starts, the options the model does not declare it can train with."""
    k = options.grad_accumulation_steps
    if k > 1 and not getattr(model_class, "supports_grad_accumulation", False):
        raise InvalidOptionError(
            f"The 'grad_accumulation_steps' option must be 1 for model {model_name!r}, which does not declare "
            "supports_grad_accumulation (a model that steps several optimisers in turn, like a GAN, cannot "
            f"accumulate gradients: raise batch_size instead). Got {k!r} instead."
        )
    if options.mixed_precision == "fp16" and not getattr(model_class, "supports_fp16", False):
        raise InvalidOptionError(
            f"The 'mixed_precision' option must be 'no' or 'bf16' for model {model_name!r}, which does not declare "
            "supports_fp16 (fp16 needs the loss scaled by the model's backward()). Got 'fp16' instead."
        )
    if options.stream and not model_class.supports_streaming():
        raise InvalidOptionError(
            f"The 'stream' option must be False for model {model_name!r}: its batch sampler needs its whole "
            "shard in memory. Got True instead."
        )


def training_arrays(data: Any) -> dict[str, np.ndarray]:
    """In-memory training data as a dict of equal-length numeric arrays (one entry per sample).

    ``data`` is an array of samples of any rank (key ``"data"``) or a dict of arrays;
    empty, non-numeric or unequal-length arrays are refused with the array named.
    """
    if isinstance(data, Mapping):
        if not data:
            raise InvalidDataError("The training data is an empty dict: give at least one array.")
        arrays = {str(key): np.asarray(value) for key, value in data.items()}
    else:
        arrays = {ENCODED_COLUMN: np.asarray(data)}
    for key, a in arrays.items():
        what = "The training data" if list(arrays) == [ENCODED_COLUMN] and not isinstance(data, Mapping) else f"Training array {key!r}"
        if a.ndim == 0 or len(a) == 0:
            raise InvalidDataError(f"{what} must hold at least one sample (an array with a leading sample axis). Got shape {a.shape}.")
        if a.dtype.kind not in "biuf":
            raise InvalidDataError(f"{what} must be numeric or bool. Got dtype {a.dtype}.")
    lengths = {key: len(a) for key, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidDataError(f"The arrays of the training data must have one length (one entry per sample). Got {lengths}.")
    return arrays


def dataset_from_arrays(data: Any) -> Any:
    """In-memory training data as a Ray Dataset that the workers split: one column per array.

    ``data`` is an array of samples of any rank (column ``"data"``) or a dict of
    equal-length arrays (a column each). Arrays of rank 2 and more become tensor
    columns of their per-sample shape (``ArrowTensorArray``), so that a worker reads
    back arrays of the shape and dtype given; the dtypes must be numeric or bool.
    Blocks hold at most 4,096 samples and about 64 MiB, so that samples spread
    evenly over the workers' shards and an image or waveform data set is not one block.
    """
    import pyarrow as pa
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    arrays = training_arrays(data)
    n = len(next(iter(arrays.values())))
    sample_bytes = sum(a.itemsize * int(np.prod(a.shape[1:], dtype=np.int64)) for a in arrays.values())
    rows = max(1, min(BLOCK_ROWS, BLOCK_BYTES // max(sample_bytes, 1)))
    bounds = np.linspace(0, n, max(1, n // rows) + 1).astype(np.int64)

    def column(a: np.ndarray) -> Any:
        a = np.ascontiguousarray(a)
        return pa.array(a) if a.ndim == 1 else ArrowTensorArray.from_numpy(a)

    tables = [pa.table({key: column(a[lo:hi]) for key, a in arrays.items()}) for lo, hi in zip(bounds[:-1], bounds[1:])]
    return ray.data.from_arrow(tables)


def _check_workers_fit(num_workers: int, cpus_per_worker: float, nodes: list[dict[str, Any]]) -> None:
    """Refuse a reservation that a Ray instance this process started can never grant.

    Ray Train would wait for the CPUs without a word, forever: a local instance does not grow.
    On a cluster this process only joined, an autoscaler may still add nodes, so the run waits.
    """
    from engine.core.runtime import largest_node_cpus, started_ray_here

    if not started_ray_here():
        return
    total = sum(float(n.get("Resources", {}).get("CPU", 0)) for n in nodes)
    largest = largest_node_cpus(nodes)
    if cpus_per_worker > largest or num_workers * cpus_per_worker > total:
        raise TrainingError(
            f"num_workers={num_workers} with cpus_per_worker={cpus_per_worker:g} asks for "
            f"{num_workers * cpus_per_worker:g} CPUs, but this local Ray instance has {total:g} "
            f"(the largest node {largest:g}): give fewer workers or fewer CPUs per worker, or leave "
            "cpus_per_worker unset to share the CPUs there are."
        )


def auto_cpus_per_worker(available_cpus: float, num_workers: int, largest_node_cpus: float) -> float:
    """CPUs per worker when the user gives none: the free CPUs shared among the workers.

    Capped at the largest node's CPUs, since one worker's reservation must fit on one node
    (8 free CPUs over two 4-CPU nodes with one worker would otherwise ask for 8 and never be
    placed), and at least 1.
    """
    share = int(available_cpus // max(num_workers, 1))
    return float(max(1, min(share, int(largest_node_cpus))))


def default_storage_path() -> str:
    """Where named runs keep their checkpoints when no ``storage_path`` is given.

    ``$SYNTH_RUNS_DIR``, else ``$XDG_CACHE_HOME/synth_engine/runs`` (``~/.cache/...``): a
    stable folder, so a run started again with the same ``run_name`` finds its checkpoints.
    """
    if os.environ.get("SYNTH_RUNS_DIR"):
        return str(Path(os.environ["SYNTH_RUNS_DIR"]).expanduser())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return str(cache / "synth_engine" / "runs")


def _root_cause(exc: BaseException) -> str:
    """The innermost error message of a Ray Train failure, one line per worker at most."""
    seen = exc
    while True:
        inner = getattr(seen, "worker_failures", None)
        if isinstance(inner, Mapping) and inner:
            seen = next(iter(inner.values()))
            continue
        nxt = seen.__cause__ or getattr(seen, "error", None) or getattr(seen, "cause", None)
        if isinstance(nxt, BaseException) and nxt is not seen:
            seen = nxt
            continue
        break
    text = str(seen).strip().splitlines()
    tail = [line for line in text if line.strip()]
    return f"{type(seen).__name__}: {tail[-1] if tail else ''}"
