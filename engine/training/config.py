"""Typed options of a training run: how long, how to scale, where to checkpoint."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from engine.core.errors import InvalidOptionError

__all__ = ["LR_SCHEDULES", "MIXED_PRECISION", "InvalidOptionError", "ScalingOptions", "TrainOptions", "parse_duration"]

_DURATION_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|min|m|h|d)")


def parse_duration(value: object, name: str = "time_budget") -> float | None:
    """Seconds in a duration: a number of seconds, or text such as ``"90s"``, ``"10m"``, ``"1h"``, ``"1h30m"``.

    ``None`` stays ``None`` (no limit). Raises :class:`InvalidOptionError` naming ``name`` otherwise.
    """
    if value is None:
        return None
    rule = "a positive number of seconds or a duration such as '90s', '10m', '1h' or '1h30m'"
    if isinstance(value, bool):
        _check(False, name, rule, value)
    if isinstance(value, (int, float)):
        _check(math.isfinite(value) and value > 0, name, rule, value)
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)  # "600" on a command line
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                _check(False, name, rule, value)
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
        _check(math.isfinite(seconds) and seconds > 0, name, rule, value)
        return seconds
    _check(False, name, rule, value)
    return None


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


LR_SCHEDULES = ("constant", "cosine", "linear")
MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass(frozen=True)
class TrainOptions:
    """How long to train, how each step is taken and where checkpoints go.

    A run is measured in epochs (passes over the data) or, when ``max_steps``
    is set, in optimisation steps. An *optimisation step* consumes
    ``grad_accumulation_steps`` batches (one ``train_step`` call each) and ends
    with one update of every optimiser and one step of the learning-rate
    schedule. A model that declares several training phases
    (:meth:`~engine.core.contract.TorchSynthModel.phases`) gives each its own
    length; a phase without one runs for ``epochs`` (or ``max_steps``).

    Attributes:
        epochs: passes over the data (each worker passes over its shard). Ignored when
            ``max_steps`` is set.
        batch_size: rows per batch (one ``train_step`` call) *per worker*.
        seed: seeds model initialisation and batch order (worker ``r`` uses ``(seed, r)``).
        checkpoint_every: reporting periods between checkpoints (the last one is always
            saved). A period is an epoch, or ``report_every_steps`` steps when the run
            counts steps: with ``max_steps=10_000, report_every_steps=100,
            checkpoint_every=10`` a checkpoint is written every 1,000 steps.
        storage_path: local folder or cloud URI (``s3://``, ``gs://``) for checkpoints;
            ``None``: ``~/.cache/synth_engine/runs`` (or ``$SYNTH_RUNS_DIR``) for a
            named run, a temporary folder for an unnamed one. A cluster of several
            nodes needs a shared folder or a cloud URI here.
        run_name: runs started again with the same name and storage path resume
            from their last checkpoint.
        max_failures: worker-group restarts Ray Train may make after a failure.
        show_progress: print a line with the losses after every reporting period.
        max_steps: train for this many optimisation steps instead of ``epochs`` (a step
            never straddles two epochs; an epoch's last batches that cannot fill a step
            are skipped).
        report_every_steps: optimisation steps per history row (and per progress line)
            when the run counts steps. Epoch runs report once per epoch.
        lr_schedule: how the loop scales the learning rate of every optimiser the model
            returns, per optimisation step after the warm-up: ``"constant"``,
            ``"cosine"`` (half a cosine down to 0 at the last step) or ``"linear"``
            (straight down to 0). With a ``time_budget`` the decay ends at the last step
            or at the end of the budget, whichever comes first. Saved in checkpoints, so a
            resumed run continues it.
        warmup_steps: optimisation steps of linear warm-up, from ``1/(warmup_steps+1)``
            of the learning rate to all of it.
        grad_accumulation_steps: batches whose gradients are averaged into one update,
            for an effective batch of ``batch_size * grad_accumulation_steps`` rows per
            worker. Only for models that declare ``supports_grad_accumulation``
            (single-optimiser models; GANs step two optimisers in turn and cannot).
        time_budget: stop training after this many seconds (or a duration text, ``"90s"``,
            ``"10m"``, ``"1h"``; normalised to seconds), counted on the workers from the first
            training step (Ray start-up and data loading excluded; validation and checkpoints
            included). It is checked after every optimisation step, so a run overshoots by at
            most one step plus the final validation and checkpoint, never by an epoch. ``epochs``
            (or ``max_steps``) still bounds the run. ``None``: no limit.
        validate_every: epochs between two validations when the run has a validator (a
            callable scoring the model, higher is better, handed to ``train_torch_model``):
            the model is scored on rank 0, the score goes in the history row
            (``"validation_score"``), and the run ends with the weights of the best-scoring
            validation, not the last ones. The last epoch is always validated.
        patience: validations without improvement after which the run stops early
            (``None``: run to the epochs or the time budget).
        mixed_precision: ``"bf16"`` or ``"fp16"`` run each ``train_step`` under
            ``torch.autocast`` (``"fp16"`` also scales the loss, for models that declare
            ``supports_fp16``). The weights and optimiser states stay float32. ``"fp16"``
            needs GPU workers; ``"bf16"`` also runs on CPUs that multiply bfloat16
            natively (AVX-512 BF16, AMX), and is refused on others, which would emulate it.
        stream: read each worker's shard afresh every epoch (``iter_batches`` over the
            Ray Dataset) instead of holding it in memory; for data sets larger than a
            worker's memory. Only for models whose batch sampler accepts a stream
            (:class:`~engine.core.contract.ShardStream`): those that keep the default one.
    """

    epochs: int = 300
    batch_size: int = 500
    seed: int = 0
    checkpoint_every: int = 10
    storage_path: str | None = None
    run_name: str | None = None
    max_failures: int = 0
    show_progress: bool = True
    max_steps: int | None = None
    report_every_steps: int = 100
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: int = 0
    grad_accumulation_steps: int = 1
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    stream: bool = False
    time_budget: float | None = None
    validate_every: int = 1
    patience: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_budget", parse_duration(self.time_budget))
        _check(_is_int(self.validate_every) and self.validate_every >= 1, "validate_every", "an integer >= 1", self.validate_every)
        _check(self.patience is None or (_is_int(self.patience) and self.patience >= 1), "patience", "an integer >= 1 or None", self.patience)
        _check(_is_int(self.epochs) and self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        _check(_is_int(self.batch_size) and self.batch_size >= 2, "batch_size", "an integer >= 2", self.batch_size)
        _check(_is_int(self.checkpoint_every) and self.checkpoint_every >= 1, "checkpoint_every", "an integer >= 1", self.checkpoint_every)
        _check(_is_int(self.max_failures) and self.max_failures >= -1, "max_failures", "an integer >= -1 (-1: retry forever)", self.max_failures)
        _check(self.max_steps is None or (_is_int(self.max_steps) and self.max_steps >= 1), "max_steps", "an integer >= 1 or None (train by epochs)", self.max_steps)
        _check(_is_int(self.report_every_steps) and self.report_every_steps >= 1, "report_every_steps", "an integer >= 1", self.report_every_steps)
        _check(self.lr_schedule in LR_SCHEDULES, "lr_schedule", _one_of(LR_SCHEDULES), self.lr_schedule)
        _check(_is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps", "an integer >= 0", self.warmup_steps)
        _check(
            _is_int(self.grad_accumulation_steps) and self.grad_accumulation_steps >= 1,
            "grad_accumulation_steps", "an integer >= 1", self.grad_accumulation_steps,
        )
        _check(self.mixed_precision in MIXED_PRECISION, "mixed_precision", _one_of(MIXED_PRECISION), self.mixed_precision)
        _check(isinstance(self.stream, bool), "stream", "True or False", self.stream)


def _is_int(value: object) -> bool:
    # bool is an int subclass: epochs=True is a mistake, not one epoch.
    return isinstance(value, int) and not isinstance(value, bool)


def _one_of(values: tuple[str, ...]) -> str:
    return "one of " + ", ".join(repr(v) for v in values)
