"""The shared WGAN-GP critic loss against answers worked out by hand."""
from __future__ import annotations

import pytest
import torch

from engine.core.wgan import wgan_gp_critic_loss


class Linear:
    """D(x) = <w, x> (+ a label term): its gradient is w everywhere, so the penalty is known exactly."""

    def __init__(self, w: torch.Tensor) -> None:
        self.w = w

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = (x.reshape(len(x), -1) * self.w.reshape(1, -1)).sum(1)
        return out if labels is None else out + labels.float()


@pytest.mark.parametrize("shape", [(6, 5), (6, 1, 2, 3)])  # a waveform batch and an image batch
def test_penalty_and_wasserstein_of_a_linear_critic(shape):
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    w = torch.full(shape[1:], 0.5)
    loss, wasserstein, penalty = wgan_gp_critic_loss(Linear(w), real, fake, None, 10.0, torch.Generator().manual_seed(1))
    expected_w = (real.reshape(6, -1) @ w.reshape(-1)).mean() - (fake.reshape(6, -1) @ w.reshape(-1)).mean()
    assert float(penalty.detach()) == pytest.approx(10.0 * (float(w.norm()) - 1) ** 2, rel=1e-5)
    assert float(wasserstein.detach()) == pytest.approx(float(expected_w), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float((penalty - wasserstein).detach()), rel=1e-5)


def test_labels_reach_the_critic_and_the_penalty_is_differentiable():
    real, fake = torch.ones(4, 3), torch.zeros(4, 3)
    w = torch.tensor([1.0, 2.0, 2.0], requires_grad=True)  # |w| = 3: penalty 10 * (3 - 1)^2
    labels = torch.tensor([0, 1, 0, 1])
    critic = lambda x, y: (x * w).sum(1) + y.float()  # noqa: E731
    loss, wasserstein, penalty = wgan_gp_critic_loss(critic, real, fake, labels, 10.0, torch.Generator().manual_seed(0))
    assert float(wasserstein.detach()) == pytest.approx(5.0) and float(penalty.detach()) == pytest.approx(40.0)
    loss.backward()  # d/dw [-(sum w) + 10 (|w| - 1)^2] = -1 + 20 (|w| - 1) w / |w|
    assert torch.allclose(w.grad, -1 + 20 * 2 * w.detach() / 3)
