"""The DDPM image model on the model contract, used directly (the Ray Train path is tested elsewhere).

Tiny UNets on 16x16 MNIST digits keep the whole file to a few seconds of CPU.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.images.models.ddpm import DDPMConfig, DDPMModel
from engine.images.transforms import ImageLayout, ImagePreprocessor

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "mnist.npz"
TINY = dict(block_out_channels=(16, 32), layers_per_block=1, lr=1e-3)


def _rows(n: int, size: int, labelled: bool) -> tuple[np.ndarray, ImageLayout]:
    with np.load(MNIST) as d:
        x, y = d["x_train"][:n], d["y_train"][:n]
    pre = ImagePreprocessor(image_size=size)
    image_set = pre.prepare(x, y if labelled else None)
    pre.fit(image_set)
    return pre.transform(image_set), pre.layout


@pytest.fixture(scope="module")
def mnist16() -> tuple[np.ndarray, ImageLayout]:
    return _rows(128, 16, labelled=True)


def _model(layout: ImageLayout, seed: int = 0, **overrides) -> DDPMModel:
    torch.manual_seed(seed)  # the UNet's initialisation
    return DDPMModel(DDPMConfig(**{**TINY, **overrides}), layout)


def _train(model: DDPMModel, rows: np.ndarray, steps: int, batch_size: int = 32, seed: int = 0) -> list[float]:
    optimizers = model.configure_optimizers()
    sampler = model.batch_sampler(rows, batch_size, np.random.default_rng(seed))
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    while len(losses) < steps:
        for batch in sampler.epoch():
            losses.append(model.train_step(batch, optimizers, generator)["loss"])
            if len(losses) == steps:
                break
    return losses


@pytest.fixture(scope="module")
def trained(mnist16) -> tuple[DDPMModel, list[float]]:
    rows, layout = mnist16
    model = _model(layout)
    return model, _train(model, rows, steps=40)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ training
def test_training_loss_decreases(trained):
    _, losses = trained
    assert all(np.isfinite(losses))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    # From ~0.8 (the first steps hover near Var(noise) = 1) to ~0.12 on this fixed set.
    assert last < 0.5 * first, (first, last)


def test_training_is_reproducible_by_seed(mnist16):
    rows, layout = mnist16
    a = _train(_model(layout), rows, steps=4)
    b = _train(_model(layout), rows, steps=4)
    c = _train(_model(layout), rows, steps=4, seed=1)
    assert a == b
    assert a != c


@pytest.mark.parametrize("labelled", [True, False])
def test_every_unet_parameter_gets_a_gradient(labelled):
    """DDP (without find_unused_parameters) needs every trained parameter in each backward."""
    rows, layout = _rows(8, 16, labelled=labelled)
    model = _model(layout)
    optimizers = model.configure_optimizers()
    batch = next(iter(model.batch_sampler(rows, 8, np.random.default_rng(0)).epoch()))
    model.train_step(batch, {"unet": _NoStep(optimizers["unet"])}, _gen(0))
    missing = [name for name, p in model.unwrapped("unet").named_parameters() if p.grad is None]
    assert not missing


class _NoStep:
    """An optimiser stand-in that keeps the gradients for inspection."""

    def __init__(self, opt: torch.optim.Optimizer):
        self.opt = opt

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        pass


def test_ema_differs_from_raw_weights_and_ramps_up(trained):
    model, losses = trained
    assert model.ema_updates == len(losses)
    raw = dict(model.unwrapped("unet").named_parameters())
    ema = dict(model.shadow_nets["ema_unet"].named_parameters())
    assert raw.keys() == ema.keys()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    assert not any(p.requires_grad for p in ema.values())
    # Warm-up: (1 + n) / (10 + n) after n updates, capped by ema_decay.
    assert model.current_ema_decay() == pytest.approx(41 / 50)
    no_warmup = DDPMModel(dataclasses.replace(model.config, ema_warmup=False), model.layout)
    assert no_warmup.current_ema_decay() == 0.999


def test_unlabelled_images_train_and_sample_unconditionally():
    rows, layout = _rows(64, 16, labelled=False)
    assert layout.num_classes == 0
    model = _model(layout)
    assert model.unwrapped("unet").class_embedding is None
    losses = _train(model, rows, steps=2)
    assert all(np.isfinite(losses))
    out = model.generate(3, None, _gen(0), steps=3)
    assert out.shape == (3, layout.dim)
    assert np.all(out[:, -1] == -1.0)
    with pytest.raises(ValueError):
        model.generate(3, np.array([0, 1, 2]), _gen(0), steps=3)


def test_28x28_with_four_levels_pads_and_crops():
    """28 is not a multiple of 8: the model pads to 32 inside and crops back."""
    rows, layout = _rows(16, 28, labelled=True)
    model = _model(layout, block_out_channels=(8, 16, 16, 16))
    assert model._pad == (2, 2, 2, 2)
    assert all(np.isfinite(_train(model, rows, steps=2, batch_size=8)))
    out = model.generate(2, np.array([3, 4]), _gen(0), steps=2)
    assert out.shape == (2, 28 * 28 + 1)
    # The default three levels need no padding at 28.
    assert DDPMModel(DDPMConfig(), layout)._pad == (0, 0, 0, 0)


# ---------------------------------------------------------------- generation
def test_ddim_samples_shape_range_and_labels(trained):
    model, _ = trained
    labels = np.array([0, 1, 2, 7, 7, 9])
    out = model.generate(len(labels), labels, _gen(0), sampler="ddim", steps=5)
    assert out.shape == (6, model.layout.dim) and out.dtype == np.float32
    pixels = out[:, :-1]
    assert np.isfinite(pixels).all() and pixels.min() >= -1.0 and pixels.max() <= 1.0
    assert pixels.std() > 0.05  # not a constant image
    np.testing.assert_array_equal(out[:, -1], labels.astype(np.float32))


def test_sampling_is_deterministic_by_seed_for_both_samplers(trained):
    model, _ = trained
    labels = np.array([1, 5, 8])
    for sampler in ("ddim", "ddpm"):
        a = model.generate(3, labels, _gen(7), sampler=sampler, steps=4)
        b = model.generate(3, labels, _gen(7), sampler=sampler, steps=4)
        c = model.generate(3, labels, _gen(8), sampler=sampler, steps=4)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a[:, :-1], c[:, :-1])


def test_chunked_generation_matches_label_order(trained):
    model, _ = trained
    chunked = DDPMModel(dataclasses.replace(model.config, sample_batch_size=2), model.layout)
    chunked.load_state_tensors(model.state_tensors())
    labels = np.array([4, 3, 2, 1, 0])
    out = chunked.generate(5, labels, _gen(0), steps=2)
    assert out.shape == (5, model.layout.dim)
    np.testing.assert_array_equal(out[:, -1], labels.astype(np.float32))


def test_generation_uses_the_ema_weights(trained):
    model, _ = trained
    copy = DDPMModel(model.config, model.layout)
    copy.load_state_tensors(model.state_tensors())
    with torch.no_grad():
        for p in copy.unwrapped("unet").parameters():
            p.zero_()
    labels = np.array([2, 6])
    np.testing.assert_array_equal(
        model.generate(2, labels, _gen(3), steps=3), copy.generate(2, labels, _gen(3), steps=3)
    )


def test_state_round_trip_gives_identical_samples(trained):
    model, _ = trained
    tensors = model.state_tensors()
    assert any(k.startswith("unet.") for k in tensors) and any(k.startswith("ema_unet.") for k in tensors)
    restored = _model(model.layout, seed=123)
    restored.load_state_tensors(tensors)
    restored.load_extra_state(model.extra_state())
    assert restored.ema_updates == model.ema_updates
    for k, v in restored.state_tensors().items():
        assert torch.equal(v, tensors[k]), k
    labels = np.array([0, 3, 9])
    np.testing.assert_array_equal(
        model.generate(3, labels, _gen(11), steps=4), restored.generate(3, labels, _gen(11), steps=4)
    )


def test_conditional_generation_needs_valid_labels(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="label"):
        model.generate(2, None, _gen(0), steps=2)
    with pytest.raises(ValueError):
        model.generate(2, np.array([0, 10]), _gen(0), steps=2)
    with pytest.raises(ValueError):
        model.generate(2, np.array([0, 1, 2]), _gen(0), steps=2)
    with pytest.raises(ValueError):
        model.generate(2, np.array([0.5, 1.0]), _gen(0), steps=2)
    with pytest.raises(ValueError):
        model.generate(2, np.array(["0", "1"]), _gen(0), steps=2)
    out = model.generate(2, np.array([3.0, 4.0]), _gen(0), steps=2)  # integral floats are fine
    np.testing.assert_array_equal(out[:, -1], [3.0, 4.0])
    assert model.generate(0, np.zeros(0, dtype=np.int64), _gen(0), steps=2).shape == (0, model.layout.dim)


def test_sampler_defaults_and_overrides(mnist16):
    _, layout = mnist16
    model = _model(layout)
    assert model.resolve_sampling() == ("ddim", 50)
    assert model.resolve_sampling("ddpm") == ("ddpm", 1000)
    assert model.resolve_sampling("ddim", 10) == ("ddim", 10)
    configured = _model(layout, sampler="ddpm", sampling_steps=200)
    assert configured.resolve_sampling() == ("ddpm", 200)
    assert configured.resolve_sampling("ddim") == ("ddim", 50)
    with pytest.raises(ValueError):
        model.resolve_sampling("euler")
    with pytest.raises(ValueError):
        model.resolve_sampling("ddim", 1001)
    with pytest.raises(ValueError):
        model.resolve_sampling("ddim", 0)
    ddim = model.make_sampling_scheduler("ddim", 50)
    assert int(ddim.timesteps[0]) == 999 and len(ddim.timesteps) == 50


# -------------------------------------------------------------------- config
def test_noise_schedules():
    layout = ImageLayout(1, 16, 16)
    linear = DDPMModel(DDPMConfig(**TINY), layout).noise_scheduler
    assert float(linear.betas[0]) == pytest.approx(1e-4) and float(linear.betas[-1]) == pytest.approx(0.02)
    short = DDPMModel(DDPMConfig(**TINY, timesteps=250), layout).noise_scheduler
    assert float(short.betas[-1]) == pytest.approx(0.08)  # Ho et al.'s end points rescaled by 1000 / T
    cosine = DDPMModel(DDPMConfig(**TINY, beta_schedule="squaredcos_cap_v2"), layout).noise_scheduler
    assert float(cosine.alphas_cumprod[-1]) < 1e-3


def test_config_from_dict_accepts_lists():
    config = DDPMModel.config_from_dict({"block_out_channels": [16, 32], "unknown": 1})
    assert config.block_out_channels == (16, 32)


@pytest.mark.parametrize(
    "bad",
    [
        {"timesteps": 1},
        {"timesteps": 10.5},
        {"beta_schedule": "cosine"},
        {"block_out_channels": ()},
        {"block_out_channels": 32},
        {"block_out_channels": (16, 0)},
        {"block_out_channels": (12, 24)},  # not divisible by the 8 GroupNorm groups
        {"layers_per_block": 0},
        {"norm_num_groups": 0},
        {"attention_head_dim": 5},
        {"dropout": 1.0},
        {"lr": 0.0},
        {"weight_decay": -1.0},
        {"max_grad_norm": float("nan")},
        {"ema_decay": 1.0},
        {"ema_decay": -0.1},
        {"sampler": "euler"},
        {"sampling_steps": 0},
        {"sampling_steps": 1001},
        {"sample_batch_size": 0},
        {"ddim_eta": -1.0},
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        DDPMConfig(**bad)


def test_registered():
    from engine.core.registry import get_model_class, modality_for_model

    assert get_model_class("ddpm") is DDPMModel
    assert modality_for_model("ddpm").name == "image"
    assert DDPMModel.layout_class is ImageLayout
