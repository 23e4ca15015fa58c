"""The engine's one training loop, on Ray Train.

Every torch model of the engine trains here: the per-worker loop builds the
model from its config, puts its networks on the worker's device and wraps
each of them with DDP (through ``ray.train.torch.prepare_model``), reads the
worker's shard of encoded rows, and calls the model's ``train_step``; it
reports metrics every epoch and checkpoints every N epochs. Local runs use the
same loop on a local Ray instance: there is no second loop.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.errors import SynthError
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

# Ray Train defaults tuned for short tabular runs; set any of them in the environment to override.
# They are read on the driver and propagated to the controller and workers.
RAY_TRAIN_DEFAULTS = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25",  # the controller polls workers; 2 s adds seconds to every run
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",  # otherwise each progress line is printed twice
    "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
}

ENCODED_COLUMN = "data"  # the column of encoded row vectors in the training Dataset (ray.data.from_numpy's name)


class TrainingError(SynthError, RuntimeError):
    """Training failed; the message carries the root cause from the worker."""


@dataclass
class TrainResult:
    """The final state of a training run.

    ``resumed_at`` lists the epochs completed at each resumption from a
    checkpoint (after a worker failure or a restart with the same run name),
    read from the checkpoint itself. ``rank_state_digests`` maps each worker
    rank to the digest of the model state it held at the final checkpoint:
    with DDP they are all equal to ``state_digest(state_tensors)``.
    ``checkpoint_path`` is None for an unnamed run, whose storage is temporary.
    """

    state_tensors: dict[str, torch.Tensor]
    extra_state: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    epochs_completed: int = 0
    checkpoint_path: str | None = None
    resumed_at: list[int] = field(default_factory=list)
    rank_state_digests: dict[int, str] = field(default_factory=dict)


def _worker_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint32)[0])


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _read_shard() -> np.ndarray:
    """This worker's encoded rows, materialised on the worker (never on the driver)."""
    import ray.train

    shard = ray.train.get_dataset_shard("train")
    parts = [b[ENCODED_COLUMN] for b in shard.iter_batches(batch_size=8192, batch_format="numpy")]
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(parts).astype(np.float32, copy=False))


def train_loop_per_worker(cfg: dict[str, Any]) -> None:
    """The Ray Train worker function (plain PyTorch with Ray at its edges)."""
    import ray.train
    import ray.train.torch

    from engine.core.runtime import torch_threads

    options = TrainOptions(**cfg["options"])
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
    optimizers = model.configure_optimizers()

    data = _read_shard()
    if len(data) == 0:
        raise TrainingError(f"Training worker {rank} received no rows: the data set has fewer rows than workers.")
    sampler = model.batch_sampler(data, options.batch_size, rng)

    start_epoch, history, resumed_at = 0, [], []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            st = load_checkpoint(d)
            mine = load_rank_random_state(d, rank)
        model.load_state_tensors(st.model_tensors)
        for name, opt in optimizers.items():
            opt.load_state_dict(st.optimizers[name])
        model.load_extra_state(st.extra_state)
        start_epoch, history = st.epoch, list(st.history)
        resumed_at = [*st.resumed_at, st.epoch]
        if mine is not None:
            rng.bit_generator.state = mine.numpy_rng
            step_gen.set_state(mine.torch_rng)
            torch.set_rng_state(mine.torch_global_rng)
        else:
            # A rank the checkpoint did not have (more workers than before): a fresh stream per
            # resumption point, so it does not replay the batches of epoch 0.
            fresh = _worker_seed(options.seed + 1_000_003 * st.epoch, rank)
            rng.bit_generator.state = np.random.default_rng(fresh).bit_generator.state  # in place: the sampler holds rng
            step_gen.manual_seed(fresh)
            torch.manual_seed(fresh)
        if rank == 0 and options.show_progress:
            print(f"resuming from the checkpoint after epoch {start_epoch}", flush=True)

    bar = _progress_bar(options, rank, start_epoch, len(sampler), cfg["model_name"])
    fail_at = cfg.get("fail_once_at_epoch")  # test hook: a worker raises once, to exercise recovery
    for epoch in range(start_epoch, options.epochs):
        if fail_at is not None and epoch == fail_at and rank == 0 and _first_failure(cfg["fail_once_marker"]):
            raise RuntimeError(f"injected failure at epoch {epoch}")
        if cfg.get("epoch_log"):  # test hook: which epochs ran, and from which random state
            _log_epoch_start(f"{cfg['epoch_log']}.rank{rank}", epoch + 1, rng, step_gen)
        sums: dict[str, float] = {}
        steps = 0
        started = time.perf_counter()
        for batch in sampler.epoch():
            metrics = model.train_step(_to_device(batch, device), optimizers, step_gen)
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
            if bar is not None:
                bar.update(1)
        if world > 1:
            _sync_buffers(model, world)
        row = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()}, "seconds": time.perf_counter() - started}
        history.append(row)
        if rank == 0 and options.show_progress:
            losses = "  ".join(f"{k} {v:+.4f}" for k, v in row.items() if k not in ("epoch", "seconds"))
            print(f"epoch {epoch + 1}/{options.epochs}  {losses}", flush=True)
            if bar is not None:
                bar.set_description(f"{cfg['model_name']} epoch {epoch + 1}/{options.epochs}  {losses}")
        last = epoch + 1 == options.epochs
        if last or (epoch + 1) % options.checkpoint_every == 0:
            # Every rank adds its own random state (and a digest of the state it holds) to the checkpoint.
            with tempfile.TemporaryDirectory() as tmp:
                tensors = model.state_tensors()
                save_rank_random_state(
                    tmp,
                    rank,
                    RankRandomState(
                        numpy_rng=rng.bit_generator.state,
                        torch_rng=step_gen.get_state(),
                        torch_global_rng=torch.get_rng_state(),
                        state_digest=state_digest(tensors),
                    ),
                )
                if rank == 0:
                    save_checkpoint(
                        tmp,
                        TrainingState(
                            epoch=epoch + 1,
                            model_tensors=tensors,
                            optimizers={k: o.state_dict() for k, o in optimizers.items()},
                            history=history,
                            extra_state=model.extra_state(),
                            resumed_at=resumed_at,
                        ),
                    )
                ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(row)
    if bar is not None:
        bar.close()


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


def _progress_bar(options: TrainOptions, rank: int, start_epoch: int, steps_per_epoch: int, name: str) -> Any:
    """A progress bar over the run's steps on rank 0, drawn by the driver (Ray's tqdm); None when hidden.

    The per-epoch lines stay as well: they are what a job's log keeps.
    """
    if rank != 0 or not options.show_progress:
        return None
    from ray.experimental.tqdm_ray import tqdm

    bar = tqdm(desc=f"{name} epoch {start_epoch}/{options.epochs}", total=options.epochs * steps_per_epoch, unit="step")
    bar.update(start_epoch * steps_per_epoch)
    return bar


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
    _test_hooks: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a torch model on encoded data with Ray Train; return the final state.

    ``model_class`` is a :class:`~engine.core.contract.TorchSynthModel` subclass (handed to the
    workers as it is, so a model registered only in this process trains too); ``model_name``
    names the run. ``layout`` is the model's layout (``model_class.layout_class``).

    ``data`` is a float32 matrix of encoded rows or a Ray Dataset with a column
    ``"data"`` of row vectors. A run started again with the same ``run_name``
    and ``storage_path`` resumes from its last checkpoint; a named run without
    ``storage_path`` keeps its checkpoints in :func:`default_storage_path`, an
    unnamed one in a temporary folder removed afterwards. On a cluster of
    several nodes the checkpoints need a shared ``storage_path`` (NFS mount or
    ``s3://`` / ``gs://`` URI): anything else raises ``SharedStorageError``.
    """
    for key, value in RAY_TRAIN_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import ray
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    from engine.core.runtime import alive_nodes, largest_node_cpus, require_shared_location

    if not ray.is_initialized():
        # As Ray Data would on first use; the synthesizers wrap this call in engine.core.runtime.ray_session.
        ray.init(logging_level="WARNING")
    nodes = alive_nodes()
    use_gpu = scaling.use_gpu
    if use_gpu is None:
        # Auto only sees GPUs that exist now: an autoscaling GPU group scaled to zero needs use_gpu=True.
        use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    cpus = scaling.cpus_per_worker
    # Before any Ray Data call: building the Dataset runs a short task that holds a CPU, and the free
    # CPUs read during it would be one short (a worker on a 2-CPU laptop got 1 CPU and 1 thread).
    if cpus is None:
        cpus = auto_cpus_per_worker(ray.available_resources().get("CPU", 1), scaling.num_workers, largest_node_cpus(nodes))
    data_context = ray.data.DataContext.get_current()
    data_context.enable_progress_bars = False  # the training bar and per-epoch loss lines are the progress report
    if isinstance(data, ray.data.Dataset):
        dataset = data
    else:
        matrix = np.ascontiguousarray(np.asarray(data, dtype=np.float32))
        if matrix.ndim != 2 or len(matrix) == 0:
            raise TrainingError(f"Training data must be a non-empty 2-D matrix of encoded rows; got shape {matrix.shape}.")
        # Blocks of ~4,096 rows so the rows spread evenly over the workers' shards.
        dataset = ray.data.from_numpy(np.array_split(matrix, max(1, len(matrix) // 4096)))
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
    cfg = {
        "model_name": model_name,
        "model_config": dict(model_config),
        "layout": layout.to_dict(),
        "options": asdict(options),
        "model_class": model_class,
        "cpus_per_worker": cpus,
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
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
        datasets={"train": dataset},
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
