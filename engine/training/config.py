"""Typed options of a training run: how long, how to scale, where to checkpoint."""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.errors import InvalidOptionError

__all__ = ["InvalidOptionError", "ScalingOptions", "TrainOptions"]


def _check(cond: bool, name: str, rule: str, got: object) -> None:
    if not cond:
        raise InvalidOptionError(f"The {name!r} option must be {rule}. Got {got!r} instead.")


@dataclass(frozen=True)
class ScalingOptions:
    """Where training runs. ``num_workers=1`` on a laptop and
    ``num_workers=8, use_gpu=True`` on a cluster are the same call.

    ``use_gpu=None`` picks a GPU when the cluster has one right now (fine on a
    laptop; an autoscaling cluster whose GPU group can scale to zero must say
    ``use_gpu=True``). ``cpus_per_worker=None`` shares the free CPUs among the
    workers, at most one node's worth (torch in a worker uses as many threads as
    CPUs it reserves, so one worker on a laptop gets all cores).
    """

    num_workers: int = 1
    use_gpu: bool | None = None
    cpus_per_worker: float | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.num_workers, int) and self.num_workers >= 1, "num_workers", "an integer >= 1", self.num_workers)
        _check(self.cpus_per_worker is None or self.cpus_per_worker > 0, "cpus_per_worker", "a number > 0 or None (auto)", self.cpus_per_worker)
        _check(self.use_gpu in (None, True, False), "use_gpu", "True, False or None (auto)", self.use_gpu)


@dataclass(frozen=True)
class TrainOptions:
    """How long to train and where checkpoints go.

    Attributes:
        epochs: passes over the data (each worker passes over its shard).
        batch_size: rows per optimisation step *per worker*.
        seed: seeds model initialisation and batch order (worker ``r`` uses ``(seed, r)``).
        checkpoint_every: epochs between checkpoints (the last epoch is always saved).
        storage_path: local folder or cloud URI (``s3://``, ``gs://``) for checkpoints;
            ``None``: ``~/.cache/synth_engine/runs`` (or ``$SYNTH_RUNS_DIR``) for a
            named run, a temporary folder for an unnamed one. A cluster of several
            nodes needs a shared folder or a cloud URI here.
        run_name: runs started again with the same name and storage path resume
            from their last checkpoint.
        max_failures: worker-group restarts Ray Train may make after a failure.
        show_progress: print a line with the losses after every epoch.
    """

    epochs: int = 300
    batch_size: int = 500
    seed: int = 0
    checkpoint_every: int = 10
    storage_path: str | None = None
    run_name: str | None = None
    max_failures: int = 0
    show_progress: bool = True

    def __post_init__(self) -> None:
        _check(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        _check(isinstance(self.batch_size, int) and self.batch_size >= 2, "batch_size", "an integer >= 2", self.batch_size)
        _check(isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1, "checkpoint_every", "an integer >= 1", self.checkpoint_every)
        _check(isinstance(self.max_failures, int) and self.max_failures >= -1, "max_failures", "an integer >= -1 (-1: retry forever)", self.max_failures)
