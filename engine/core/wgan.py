"""The WGAN-GP critic loss (Gulrajani et al. 2017), shared by the image and audio GANs.

The critic is kept 1-Lipschitz by penalising the norm of its gradient at random
interpolates between real and generated samples. Each sample's gradient is
penalised on its own, so a critic that uses batch statistics (BatchNorm) breaks
the penalty: critics trained with it normalise per sample.
"""
from __future__ import annotations

from collections.abc import Callable

import torch


def wgan_gp_critic_loss(
    critic: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None,
    gp_weight: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The critic's loss ``-(E[D(real)] - E[D(fake)]) + gp_weight * E[(|grad D(interp)| - 1)^2]``.

    ``real`` and ``fake`` are batches of the same shape ``(B, ...)``; ``labels`` is
    None or one label per sample, passed to ``critic`` beside the samples. The
    interpolation weights are drawn from ``generator`` (one per sample, on the CPU,
    so runs are reproducible on any device). Returns ``(loss, wasserstein, penalty)``:
    the loss to back-propagate, the Wasserstein estimate and the weighted penalty.
    """
    n = real.shape[0]
    alpha = torch.rand(n, *([1] * (real.dim() - 1)), generator=generator).to(real.device)
    interp = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    # Real, fake and interpolates in one critic forward: under DDP the penalty's double
    # backward must follow a single forward.
    scores = critic(torch.cat([real, fake, interp]), None if labels is None else torch.cat([labels, labels, labels]))
    s_real, s_fake, s_interp = scores.split(n)
    grad = torch.autograd.grad(s_interp.sum(), interp, create_graph=True)[0]
    penalty = ((grad.reshape(n, -1).norm(2, dim=1) - 1) ** 2).mean() * gp_weight
    wasserstein = s_real.mean() - s_fake.mean()
    return -wasserstein + penalty, wasserstein, penalty
