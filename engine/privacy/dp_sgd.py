"""DP-SGD plumbing the private models share: Poisson batches, Opacus' DP optimiser, the private step.

**Workers.** With several Ray Train workers each holds a shard and includes each of its rows
with probability ``sample_rate`` per step, so the union of the workers' batches is a Poisson
sample of the whole table at that rate, as the accountant assumes. Each worker clips its
rows' gradients; Opacus' :class:`~opacus.optimizers.DistributedDPOptimizer` adds the Gaussian
noise **once, on rank 0**, then all-reduces the sums and divides by the expected global
batch. The noise in the update is therefore exactly ``noise_multiplier * max_grad_norm``,
as on one machine: workers are trusted to run the code (honest-but-curious); a worker
that saw another's un-noised sum would see more than the guarantee covers.

Noise comes from torch's generator seeded by the run's seed (reproducible), not from a
cryptographically secure source (Opacus' ``secure_mode``): enough for research and
benchmarks, and stated in every report.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from engine.core.contract import BatchSampler
from engine.core.params import Refused, Rule


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def dp_optimizer(
    optimizer: torch.optim.Optimizer, *, noise_multiplier: float, max_grad_norm: float, expected_batch_size: float, seed: int
) -> Any:
    """Opacus' DP optimiser around ``optimizer`` (its distributed form when training runs on several workers)."""
    from opacus.optimizers import DistributedDPOptimizer, DPOptimizer

    cls = DistributedDPOptimizer if is_distributed() else DPOptimizer
    return cls(
        optimizer,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        expected_batch_size=max(int(round(expected_batch_size)), 1),
        loss_reduction="mean",
        generator=torch.Generator().manual_seed(seed),
    )


class PrivateSteps:
    """Mixin of the DP models: counts the private steps, refuses one beyond the budget, and keeps
    the front door's privacy account; both are checkpointed (a resumed run keeps counting) and saved."""

    private_steps: int = 0
    privacy_: dict[str, Any]

    def start_private_steps(self) -> None:
        self.private_steps = 0
        self.privacy_ = {}  # the front door's account of the budget, saved with the model

    def check_private_step(self, model: str, step: str = "step") -> None:
        """Refuse the next private ``step`` when ``config.max_private_steps`` (0: no limit) are taken."""
        from engine.privacy.errors import PrivacyBudgetError

        limit = self.config.max_private_steps  # type: ignore[attr-defined]
        if limit and self.private_steps >= limit:
            raise PrivacyBudgetError(f"{model} refused {step} {self.private_steps + 1}: the budget affords {limit}.")

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "private_steps": self.private_steps, "privacy": self.privacy_}  # type: ignore[misc]

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        super().load_extra_state(state)  # type: ignore[misc]
        self.private_steps = int(state.get("private_steps", 0))
        self.privacy_ = dict(state.get("privacy") or {})


def worker_noise_seed(noise_seed: int) -> int:
    """The seed of this worker's DP noise: the config's ``noise_seed`` mixed with the worker's torch seed."""
    return int(np.random.SeedSequence([noise_seed, torch.initial_seed() % 2**32]).generate_state(1)[0])


def private_module(
    module: torch.nn.Module, optimizer: torch.optim.Optimizer, *, noise_multiplier: float, max_grad_norm: float, noise_seed: int
) -> tuple[Any, Any]:
    """``module`` with per-sample gradients (Opacus' ``GradSampleModule``) and its DP optimiser.

    The module is the bare network, not the loop's DDP wrapper, which is never run forward:
    the DP optimiser all-reduces the noised sums itself. The expected batch size is set per
    step by the model (Poisson batches vary).
    """
    from opacus import GradSampleModule

    dp = dp_optimizer(optimizer, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, expected_batch_size=1,
                      seed=worker_noise_seed(noise_seed))
    return GradSampleModule(module, loss_reduction="mean"), dp


def private_step(optimizer: Any, public_grads: Sequence[torch.Tensor | None] | None = None) -> None:
    """Clip, noise (and all-reduce) the per-sample gradients in ``p.grad_sample``, add the public part, step.

    ``public_grads`` (one per parameter of the optimiser, in order) are gradients of terms that
    read no real row (the critic's loss on generated rows): they are post-processing of the
    private parameters, so they join the update without clipping or noise (averaged over workers).
    """
    from opacus.optimizers import DistributedDPOptimizer

    if not optimizer.pre_step():
        return
    if isinstance(optimizer, DistributedDPOptimizer):
        optimizer.reduce_gradients()
    if public_grads is not None:
        world = torch.distributed.get_world_size() if is_distributed() else 1
        for p, g in zip(optimizer.params, public_grads):
            if g is None:
                continue
            if world > 1:
                g = g.clone()
                torch.distributed.all_reduce(g, op=torch.distributed.ReduceOp.SUM)
                g /= world
            p.grad = p.grad + g
    optimizer.original_optimizer.step()


def empty_grad_samples(params: Sequence[torch.Tensor]) -> None:
    """Per-sample gradients of an empty Poisson batch (no row drawn): the update is noise alone."""
    for p in params:
        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)


class PoissonBatches(BatchSampler):
    """Poisson-sampled batches of a shard: each row joins each step's batch with probability ``sample_rate``.

    An epoch is ``round(1 / sample_rate)`` steps (one pass in expectation). ``extra`` builds the
    rest of a batch (conditional vectors, ...) from the sampled rows and the rng.
    """

    def __init__(
        self,
        data: np.ndarray,
        sample_rate: float,
        rng: np.random.Generator,
        extra: Callable[[torch.Tensor, np.ndarray, np.random.Generator], dict[str, torch.Tensor]] | None = None,
    ):
        self.data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        self.codes = np.asarray(data)
        self.sample_rate = float(sample_rate)
        self.rng = rng
        self.extra = extra
        self.steps = max(1, int(round(1.0 / self.sample_rate)))

    def __len__(self) -> int:
        return self.steps

    @property
    def expected_batch_size(self) -> float:
        return self.sample_rate * len(self.data)

    def epoch(self) -> Iterator[Any]:
        for _ in range(self.steps):
            idx = np.flatnonzero(self.rng.random(len(self.data)) < self.sample_rate)
            rows = self.data[torch.from_numpy(idx)]
            if self.extra is None:
                yield rows
            else:
                yield {"real": rows, **self.extra(rows, idx, self.rng)}


class Frequencies(Rule):
    """A list of lists of non-negative numbers (category frequencies per discrete column), stored as tuples."""

    type_name = "list[list[float]]"

    def check(self, value: Any) -> tuple[tuple[float, ...], ...]:
        try:
            out = tuple(tuple(float(x) for x in row) for row in value)
        except (TypeError, ValueError):
            raise Refused from None
        if any(x < 0 or not np.isfinite(x) for row in out for x in row):
            raise Refused
        return out

    def text(self, plural: bool = False) -> str:
        return "lists of non-negative numbers (one list per discrete column)"
