"""The sequence models' training options used by the benchmark: the Fourier loss and EMA of
``diffusion_ts``, TimeGAN's phases in steps and its generator steps. In process, tiny nets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.core.errors import SynthError
from engine.timeseries.transforms import SequenceLayout


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(n: int = 16, steps: int = 8, channels: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((n, steps, channels), generator=g) * 2 - 1
    mask = torch.ones(n, steps)
    mask[:4, 5:] = 0
    return {"x": x * mask[:, :, None], "mask": mask, "static": torch.zeros(n, 0)}


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_sequence_loss_matches_a_numpy_reference(kind):
    from engine.timeseries.models.diffusion import sequence_loss

    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(3, 10, 2)), rng.normal(size=(3, 10, 2))
    mask = np.ones((3, 10))
    mask[0, 7:] = 0
    err = np.abs if kind == "l1" else np.square
    m = mask[:, :, None] * np.ones_like(target)
    fp, ft = np.fft.fft(pred * m, axis=1) / 10, np.fft.fft(target * m, axis=1) / 10
    expected = (err(pred - target) * m).sum() / m.sum() + 0.7 * (err(fp.real - ft.real) + err(fp.imag - ft.imag)).mean()
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    got = sequence_loss(t(pred), t(target), t(mask), kind, 0.7)
    assert float(got) == pytest.approx(expected, rel=1e-9)
    # A padded step's values do not count.
    pred2 = pred.copy()
    pred2[0, 8] += 5.0
    assert float(sequence_loss(t(pred2), t(target), t(mask), kind, 0.7)) == pytest.approx(expected, rel=1e-9)


def test_diffusion_samples_from_its_ema_weights():
    from engine.core.ema import ema_decay
    from engine.timeseries.models.diffusion import DiffusionTSConfig, SequenceDiffusionModel

    torch.manual_seed(0)
    cfg = DiffusionTSConfig(d_model=8, num_heads=2, num_layers=1, timesteps=20, sampling_steps=4, lr=1e-2, ema_decay=0.9)
    model = SequenceDiffusionModel(cfg, SequenceLayout(steps=8, channels=2, static_dim=0))
    before = [p.clone() for p in model.nets["denoiser"].parameters()]
    opts, gen, batch = model.configure_optimizers(), torch.Generator().manual_seed(0), _batch()
    model.train_step(batch, opts, gen)
    d = ema_decay(0.9, 0)  # the first update's (ramped) decay
    for b, p, e in zip(before, model.nets["denoiser"].parameters(), model.shadow_nets["ema_denoiser"].parameters()):
        torch.testing.assert_close(e, d * b + (1 - d) * p)
    assert model.extra_state() == {"ema_updates": 1}
    # generate() reads the average: overwriting the live weights changes nothing, overwriting the average does.
    cond = {"mask": np.ones((3, 8), np.float32)}
    a = model.generate(3, cond, torch.Generator().manual_seed(2))
    with torch.no_grad():
        for p in model.nets["denoiser"].parameters():
            p.add_(1.0)
    assert np.array_equal(a, model.generate(3, cond, torch.Generator().manual_seed(2)))
    with torch.no_grad():
        for p in model.shadow_nets["ema_denoiser"].parameters():
            p.add_(1.0)
    assert not np.allclose(a, model.generate(3, cond, torch.Generator().manual_seed(2)))


def test_timegan_phases_in_steps_and_generator_steps():
    from engine.timeseries.models.timegan import TimeGANConfig, TimeGANModel

    with pytest.raises(SynthError, match="supervised_steps"):
        TimeGANConfig(supervised_epochs=2, supervised_steps=5).check_combination()
    torch.manual_seed(0)
    cfg = TimeGANConfig(hidden_dim=4, num_layers=1, embedding_steps=7, supervised_epochs=2, generator_steps=3)
    model = TimeGANModel(cfg, SequenceLayout(steps=8, channels=2, static_dim=0))
    assert [(p.name, p.epochs, p.steps) for p in model.phases()] == [
        ("embedding", None, 7), ("supervised", 2, None), ("joint", None, None)]
    opts, gen = model.configure_optimizers(), torch.Generator().manual_seed(0)
    model.phase = "joint"
    model.train_step(_batch(), opts, gen)
    # Three generator and three embedder updates for (at most) one discriminator update.
    step_of = lambda opt: int(next(iter(opt.state.values()))["step"])  # noqa: E731
    assert step_of(opts["generator"]) == 3 and step_of(opts["embedder"]) == 3
    assert step_of(opts["discriminator"]) <= 1


def test_timegan_dynamics_loss_scores_generated_latents_against_the_supervisor_and_leaves_it_alone():
    """Latents rolled out by the supervisor itself follow its dynamics (no loss); jumpy ones do not. The
    gradient reaches the generated latents, never the supervisor: it must stay a model of real dynamics."""
    from engine.timeseries.models.timegan import TimeGANConfig, TimeGANModel

    torch.manual_seed(0)
    model = TimeGANModel(TimeGANConfig(hidden_dim=4, num_layers=2, dynamics_weight=10.0),
                         SequenceLayout(steps=8, channels=2, static_dim=0))
    sup, static, mask = model.nets["supervisor"], torch.zeros(16, 0), torch.ones(16, 8)
    with torch.no_grad():
        rollout = torch.rand(16, 1, 4)
        for _ in range(7):
            rollout = torch.cat([rollout, sup(rollout, static)[:, -1:]], dim=1)
    assert model._dynamics_loss(rollout, static, mask) < 1e-10
    jumpy = torch.rand(16, 8, 4, requires_grad=True)
    loss = model._dynamics_loss(jumpy, static, mask)
    assert loss > 0.01
    loss.backward()
    assert jumpy.grad.abs().sum() > 0
    assert all(p.grad is None for p in sup.parameters())
    # Padded steps are left out.
    mask[:, 1:] = 0
    assert model._dynamics_loss(jumpy, static, mask) == 0


def test_timegan_moment_loss_is_per_time_step():
    """One trajectory shared by every sequence, sweeping the real range, matches the real moments pooled
    over time but not step by step: the generator must not be rewarded for ignoring its noise."""
    from engine.timeseries.models.timegan import _moment_loss

    rng = np.random.default_rng(0)
    levels = torch.tensor(rng.uniform(-1, 1, (256, 1, 1)), dtype=torch.float32)
    real = levels.expand(-1, 24, 2)  # every sequence flat at its own level
    ramp = torch.linspace(-1, 1, 24)[None, :, None].expand(256, -1, 2)  # one shared ramp over the same range
    mask = torch.ones(256, 24)
    pooled_gap = (ramp.std() - real.std()).abs() + (ramp.mean() - real.mean()).abs()
    assert pooled_gap < 0.1  # the collapse a pooled loss would not see
    assert _moment_loss(ramp, real, mask) > 0.6
    other = torch.tensor(rng.uniform(-1, 1, (256, 1, 1)), dtype=torch.float32).expand(-1, 24, 2)
    assert _moment_loss(other, real, mask) < 0.1
    # Padded steps are left out: fakes that differ only there cost nothing.
    mask[:, 12:] = 0
    assert torch.isclose(_moment_loss(torch.where(mask[:, :, None] > 0, other, 5.0), other, mask), torch.tensor(0.0), atol=1e-3)
