"""Exponential moving average of a network's weights, for generation.

Averaging a generator's weights over the last few hundred steps smooths out the
oscillation of adversarial (and diffusion) training: samples from the average
are steadier and usually better than from the last step's weights (Yazıcı et
al. 2019, "The unusual effectiveness of averaging in GAN training"). The models
keep the average in ``shadow_nets``, so it is checkpointed and saved with them.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def ema_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to hold its moving average."""
    return copy.deepcopy(module).requires_grad_(False).eval()


def ema_decay(decay: float, updates: int, warmup: bool = True) -> float:
    """The decay of the next update: ramped up as ``(1 + n) / (10 + n)`` during warm-up.

    Without the ramp a short run's average would be mostly the random initial weights.
    """
    return min(decay, (1.0 + updates) / (10.0 + updates)) if warmup else decay


@torch.no_grad()
def update_ema(average: nn.Module, current: nn.Module, decay: float) -> None:
    """Move ``average``'s weights towards ``current``'s by ``1 - decay``; copy its buffers.

    Buffers (BatchNorm running statistics) are running averages already: they are copied.
    """
    torch._foreach_lerp_(list(average.parameters()), list(current.parameters()), 1.0 - decay)
    for b_avg, b_cur in zip(average.buffers(), current.buffers()):
        b_avg.copy_(b_cur)
