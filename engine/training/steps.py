"""How the training loop takes one optimisation step, and how long each phase of a run lasts.

The loop in :mod:`engine.training.loop` owns the run (Ray, data, checkpoints,
reports); this module owns what happens between two updates of the weights,
so that it can be read (and tested) without Ray:

* :func:`plan_phases` turns a model's :class:`~engine.core.contract.Phase` list and
  the :class:`~engine.training.config.TrainOptions` into lengths in epochs or steps;
* :func:`build_schedulers` makes the learning-rate schedule of every optimiser;
* :class:`StepRunner` takes one optimisation step: ``grad_accumulation_steps``
  calls of the model's ``train_step`` (under autocast and DDP's ``no_sync`` where
  they apply), then the schedule and loss-scale updates.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from engine.core.contract import Accumulation, Phase
from engine.core.errors import SynthError
from engine.training.config import TrainOptions


class PhaseError(SynthError, ValueError):
    """A model's phases do not fit together or with the run's options."""


@dataclass(frozen=True)
class PlannedPhase:
    """A phase with its length resolved: ``length`` epochs or optimisation steps."""

    name: str
    unit: Literal["epochs", "steps"]
    length: int


def plan_phases(phases: Sequence[Phase], options: TrainOptions) -> list[PlannedPhase]:
    """Resolve each phase's length; one without its own takes the run's (``epochs`` or ``max_steps``)."""
    if not phases:
        raise PhaseError("A model's phases() must list at least one phase.")
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise PhaseError(f"A model's phases must have distinct names. Got {names}.")
    plan = []
    for p in phases:
        if p.steps is not None:
            plan.append(PlannedPhase(p.name, "steps", p.steps))
        elif p.epochs is not None:
            plan.append(PlannedPhase(p.name, "epochs", p.epochs))
        elif options.max_steps is not None:
            plan.append(PlannedPhase(p.name, "steps", options.max_steps))
        else:
            plan.append(PlannedPhase(p.name, "epochs", options.epochs))
    return plan


def run_unit(plan: Sequence[PlannedPhase]) -> Literal["epochs", "steps"]:
    """The unit a run is counted in (``resumed_at``, progress lines): steps as soon as one phase counts steps."""
    return "steps" if any(p.unit == "steps" for p in plan) else "epochs"


def total_steps(plan: Sequence[PlannedPhase], steps_per_epoch: int | None) -> int | None:
    """Optimisation steps of the whole run; None when an epoch's steps are unknown (a streamed shard)."""
    total = 0
    for p in plan:
        if p.unit == "steps":
            total += p.length
        elif steps_per_epoch is None:
            return None
        else:
            total += p.length * steps_per_epoch
    return total


class ScheduleFactor:
    """The learning-rate multiplier at optimisation step ``s`` (a picklable, JSON-able callable).

    Linear warm-up from ``1/(warmup+1)`` to 1 over ``warmup`` steps (the first update
    is not wasted at a learning rate of 0), then constant, half a cosine or a
    straight line down to 0 at step ``total`` or at the end of the time budget,
    whichever comes first. The loop tells the factor how much of the budget is spent
    (:meth:`StepRunner.spend_budget`): a run that stops on its budget would otherwise
    end with the learning rate of its start, since its ``total`` is only a bound.
    """

    def __init__(self, kind: str, warmup: int, total: int | None):
        self.kind = kind
        self.warmup = warmup
        self.total = total
        self.budget_start = 0.0  # decay done by the runs this one resumes (each had a budget of its own)
        self.budget_spent = 0.0  # share of this run's time budget spent so far

    @property
    def budget_progress(self) -> float:
        """The share of the decay the time budgets have taken so far."""
        return self.budget_start + (1.0 - self.budget_start) * min(1.0, self.budget_spent)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.kind == "constant":
            return 1.0
        progress = self.budget_progress
        if self.total is not None:
            progress = max(progress, min(1.0, (step - self.warmup) / max(1, self.total - self.warmup)))
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress  # linear


def build_schedulers(
    optimizers: Mapping[str, torch.optim.Optimizer], options: TrainOptions, steps: int | None
) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """One ``LambdaLR`` per optimiser, stepped once per optimisation step; none for a constant rate.

    ``steps`` is the run's total of optimisation steps (the end of a cosine or linear decay,
    unless the time budget ends first).
    """
    if options.lr_schedule == "constant" and options.warmup_steps == 0:
        return {}  # nothing to schedule: the optimisers keep their learning rates untouched
    if options.lr_schedule != "constant" and steps is None and options.time_budget is None:
        raise PhaseError(
            f"The 'lr_schedule' option {options.lr_schedule!r} decays over the run's steps, which a streamed "
            "shard does not tell in advance: set 'max_steps' (or give every phase its length in steps) "
            "or a 'time_budget'."
        )
    return {
        name: torch.optim.lr_scheduler.LambdaLR(opt, ScheduleFactor(options.lr_schedule, options.warmup_steps, steps))
        for name, opt in optimizers.items()
    }


def windows(batches: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive groups of ``size`` batches; a last, shorter group is dropped (every step averages ``size`` batches)."""
    group: list[Any] = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []


class LoopOptimizer:
    """What ``train_step`` gets for an optimiser when the loop accumulates gradients or scales the loss.

    ``zero_grad`` does nothing (the loop clears the gradients before a step's first
    batch); ``step`` updates the weights only on a step's last batch, through the
    fp16 loss scaler when there is one. Everything else is the wrapped optimiser's.
    """

    def __init__(self, wrapped: torch.optim.Optimizer, runner: StepRunner):
        self.wrapped = wrapped
        self._runner = runner

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass

    def step(self, closure: Any = None) -> Any:
        if not self._runner.accumulation.last:
            return None
        if self._runner.scaler is not None:
            return self._runner.scaler.step(self.wrapped)
        return self.wrapped.step(closure)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


class StepRunner:
    """Takes the optimisation steps of one worker: ``train_step`` calls, schedules, loss scale.

    With one batch per step, no fp16 and no schedule it calls ``train_step`` with the
    model's own optimisers and nothing else, as the loop always did.
    """

    def __init__(
        self,
        model: Any,
        optimizers: Mapping[str, torch.optim.Optimizer],
        options: TrainOptions,
        device: torch.device,
        schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler] | None = None,
    ):
        self.model = model
        self.optimizers = dict(optimizers)
        self.schedulers = dict(schedulers or {})
        self.device = device
        self.k = options.grad_accumulation_steps
        self.accumulation = Accumulation(0, self.k)
        on_gpu = device.type == "cuda"
        # fp16 needs CUDA (and its loss scaler); bf16 runs on CPUs too, where the driver has checked
        # that the CPU multiplies it natively.
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16 if on_gpu else None}.get(options.mixed_precision)
        self.autocast_device = device.type
        self.scaler = torch.amp.GradScaler("cuda") if on_gpu and options.mixed_precision == "fp16" else None
        model.grad_scaler = self.scaler
        wrap = self.k > 1 or self.scaler is not None
        self.step_optimizers = {k: LoopOptimizer(o, self) for k, o in self.optimizers.items()} if wrap else self.optimizers
        self._params = _unique_params(self.optimizers.values())
        if self.k > 1:
            # The mean gradient over the step's batches, whatever the model does with its loss: every
            # gradient is divided by k as autograd computes it (before DDP's all-reduce sees it).
            scale = 1.0 / self.k
            for p in self._params:
                p.register_hook(lambda g, s=scale: g * s)
        self._ddp = [net for net in model.nets.values() if hasattr(net, "no_sync")]

    def step(self, batches: Sequence[Any], generator: torch.Generator) -> dict[str, float]:
        """One optimisation step over ``len(batches) == grad_accumulation_steps`` batches (on the CPU).

        Returns the losses averaged over the batches.
        """
        if self.k > 1:
            for p in self._params:
                p.grad = None
        sums: dict[str, float] = {}
        for i, batch in enumerate(batches):
            self.accumulation = Accumulation(i, self.k)
            self.model.accumulation = self.accumulation
            with contextlib.ExitStack() as stack:
                if not self.accumulation.last:
                    # Gradients stay on each rank until the step's last batch, whose backward all-reduces their sum.
                    for net in self._ddp:
                        stack.enter_context(net.no_sync())
                if self.autocast_dtype is not None:
                    stack.enter_context(torch.autocast(device_type=self.autocast_device, dtype=self.autocast_dtype))
                metrics = self.model.train_step(_to_device(batch, self.device), self.step_optimizers, generator)
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value)
        if self.scaler is not None:
            self.scaler.update()
        with warnings.catch_warnings():
            # A phase may leave an optimiser idle: its schedule still follows the run's steps.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for scheduler in self.schedulers.values():
                scheduler.step()
        self.model.accumulation = Accumulation()
        return {key: value / len(batches) for key, value in sums.items()}

    # -- checkpoints --------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The schedules' and the loss scaler's state (JSON-able), for a checkpoint."""
        return {
            "schedulers": {name: _jsonable(s.state_dict()) for name, s in self.schedulers.items()},
            "grad_scaler": None if self.scaler is None else _jsonable(self.scaler.state_dict()),
        }

    def load_state(self, state: Mapping[str, Any], step: int) -> None:
        """Continue the schedules at optimisation step ``step`` (after the optimisers' own state is loaded).

        The schedule's shape (kind, warm-up, total) is this run's: a run resumed with more steps
        stretches its decay over them, and one resumed with a time budget decays the rest of the
        way over its new budget. A schedule the checkpoint did not have starts at ``step``.
        """
        saved = state.get("schedulers") or {}
        for name, scheduler in self.schedulers.items():
            shapes = [dict(vars(f)) for f in scheduler.lr_lambdas]
            if name in saved:
                scheduler.load_state_dict(dict(saved[name]))
                for f, shape in zip(scheduler.lr_lambdas, shapes):
                    # The decay the saved budgets took (none in a checkpoint from before budgets decayed).
                    vars(f).update(shape, budget_start=f.budget_progress, budget_spent=0.0)
            scheduler.last_epoch = step
            _apply_schedule(scheduler)
        if self.scaler is not None and state.get("grad_scaler"):
            self.scaler.load_state_dict(dict(state["grad_scaler"]))

    def spend_budget(self, share: float) -> None:
        """Tell the schedules that ``share`` of the time budget is spent, and set the learning rates of the next step.

        Every rank must pass the same share (the loop agrees on it), or their updates would differ.
        """
        for scheduler in self.schedulers.values():
            for f in scheduler.lr_lambdas:
                f.budget_spent = share
            _apply_schedule(scheduler)


def _apply_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR) -> None:
    """Set the optimiser's learning rates to the schedule's at its current step."""
    step = scheduler.last_epoch
    lrs = [base * f(step) for base, f in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = lrs  # what get_last_lr() reports


def _unique_params(optimizers: Iterable[torch.optim.Optimizer]) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                if p.requires_grad:
                    seen.setdefault(id(p), p)
    return list(seen.values())


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
