"""Generation precision (float32 / bfloat16) and CTGAN's hard sampling of categories."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import TabularSynthesizer
from engine.tabular.models.ctgan import CTGAN, CTGANConfig
from engine.core.precision import InferenceCopies, check_precision, generation_dtype
from engine.tabular.models.tvae import TVAE, TVAEConfig
from engine.training.config import InvalidOptionError
from engine.tabular.transforms.layout import EncodedLayout, Span

# One continuous column (scalar + 3 modes) and two categorical columns of 4 and 2 categories.
LAYOUT = EncodedLayout(
    spans=(
        Span("x", 0, 1, "tanh", "value"),
        Span("x", 1, 3, "softmax", "mode"),
        Span("colour", 4, 4, "softmax", "category"),
        Span("flag", 8, 2, "softmax", "category"),
    )
)


def _ctgan() -> CTGAN:
    torch.manual_seed(0)
    return CTGAN(CTGANConfig(embedding_dim=8, generator_dims=(16, 16), discriminator_dims=(16,), pac=2), LAYOUT)


def test_precision_names_are_checked():
    assert check_precision("bfloat16") == "bfloat16"
    with pytest.raises(InvalidOptionError, match="'auto', 'float32', 'bfloat16'.*'half'"):
        check_precision("half")
    with pytest.raises(InvalidOptionError, match="sampling_precision"):
        TabularSynthesizer("ctgan", sampling_precision="fp8")


def test_explicit_precisions_resolve_on_any_cpu():
    cpu = torch.device("cpu")
    assert generation_dtype("float32", cpu) == torch.float32
    assert generation_dtype("bfloat16", cpu) == torch.bfloat16
    assert generation_dtype("auto", cpu) in (torch.float32, torch.bfloat16)


def test_hard_sampling_draws_categories_with_the_softmax_probabilities():
    model = _ctgan()
    logits = torch.tensor([0.0, 1.0, -1.0, 0.0, 2.0, 0.5, -3.0, 0.0, 1.5, -0.5])
    n = 200_000
    spans = model._draw_spans(logits[:, None].repeat(1, n), torch.Generator().manual_seed(1))  # feature-major
    assert spans.shape == (len(LAYOUT.spans), n)
    assert torch.allclose(spans[0], torch.tanh(logits[0]).expand(n))
    for j, span in enumerate(LAYOUT.spans[1:], start=1):
        picks = spans[j].long()
        assert picks.min() >= 0 and picks.max() < span.width, span.column  # always inside the block
        expected = torch.softmax(logits[span.start : span.stop], dim=0)
        observed = torch.bincount(picks, minlength=span.width).double() / n
        # Four standard errors of a binomial share: fails for a biased or shifted draw.
        tolerance = 4 * torch.sqrt(expected * (1 - expected) / n) + 1e-4
        assert torch.all((observed - expected).abs() < tolerance), (span.column, observed, expected)


def test_hard_sampling_never_leaves_a_block_when_one_logit_dominates():
    model = _ctgan()
    logits = torch.zeros(LAYOUT.dim, 1000)
    logits[7] = 80.0  # the last colour: its neighbours' probability underflows to 0
    spans = model._draw_spans(logits, torch.Generator().manual_seed(2))
    assert torch.equal(spans[2], torch.full((1000,), 3.0))


def _trained_like_batch_norm(g: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine weights, as training leaves them."""
    with torch.no_grad():
        for block in g.blocks:
            bn = block.bn
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.2, 3.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)


def test_sampling_generator_matches_the_trained_generator_in_eval_mode():
    from engine.tabular.models.ctgan import SamplingGenerator

    g = _ctgan().unwrapped("generator")
    _trained_like_batch_norm(g)
    g.eval()
    x = torch.randn(64, 8 + 6)
    folded = SamplingGenerator(g, torch.float32)
    buffer = folded.buffer(64, torch.device("cpu"))
    buffer[-folded.in_dim :] = x.T
    with torch.no_grad():
        assert torch.allclose(folded(buffer).T, g(x), atol=1e-5)


def test_bfloat16_sampling_generator_is_close_to_float32_and_follows_new_weights():
    from engine.tabular.models.ctgan import SamplingGenerator

    bare = _ctgan().unwrapped("generator")
    _trained_like_batch_norm(bare)
    bare.eval()
    copies = InferenceCopies()
    x = torch.randn(256, 8 + 6)

    def run(folded: SamplingGenerator) -> torch.Tensor:
        buffer = folded.buffer(len(x), torch.device("cpu"))
        buffer[-folded.in_dim :] = x.T.to(folded.dtype)
        return folded(buffer).float().T

    with torch.no_grad():
        exact = bare(x)
        fast = copies.get("generator", bare, torch.bfloat16, SamplingGenerator)
        assert fast.out_weight.dtype == torch.bfloat16
        assert (run(fast) - exact).abs().max() < 0.05 * exact.abs().max()
        assert copies.get("generator", bare, torch.bfloat16, SamplingGenerator) is fast  # cached while the weights stay
        bare.out.weight.mul_(-1.0)  # an in-place update, as an optimiser step makes
        refreshed = copies.get("generator", bare, torch.bfloat16, SamplingGenerator)
        assert refreshed is not fast
        assert (run(refreshed) - bare(x)).abs().max() < 0.05 * exact.abs().max()


def test_default_inference_copy_casts_and_keeps_float32_modules_as_they_are():
    bare = torch.nn.Linear(3, 2)
    copies = InferenceCopies()
    assert copies.get("net", bare, torch.float32) is bare
    cast = copies.get("net", bare, torch.bfloat16)
    assert cast is not bare and cast.weight.dtype == torch.bfloat16 and not cast.weight.requires_grad


def test_span_form_and_one_hot_rows_convert_both_ways():
    model = _ctgan()
    spans = model.generate_spans(300, None, torch.Generator().manual_seed(4))
    assert spans.shape == (300, len(LAYOUT.spans))
    rows = LAYOUT.one_hot(spans)
    np.testing.assert_array_equal(LAYOUT.span_values(rows), spans)
    np.testing.assert_array_equal(model.generate(300, None, torch.Generator().manual_seed(4)), rows)


@pytest.mark.parametrize("make", [_ctgan, lambda: TVAE(TVAEConfig(embedding_dim=4, compress_dims=(8,), decompress_dims=(8,)), LAYOUT)])
def test_generation_in_either_precision_is_deterministic_and_well_formed(make):
    model = make()
    for dtype in (torch.float32, torch.bfloat16):
        a = model.generate(500, None, torch.Generator().manual_seed(3), dtype=dtype)
        b = model.generate(500, None, torch.Generator().manual_seed(3), dtype=dtype)
        assert a.dtype == np.float32 and a.shape == (500, LAYOUT.dim)
        np.testing.assert_array_equal(a, b)
        assert np.all(np.abs(a[:, 0]) <= 1.0)
        for span in LAYOUT.spans[1:]:
            np.testing.assert_array_equal(a[:, span.start : span.stop].sum(axis=1), 1.0)


def test_sampling_precision_is_saved_and_can_be_changed_after_loading(tmp_path, adult_small, ray_session):
    synth = TabularSynthesizer(
        "ctgan",
        model_config={"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32], "pac": 5},
        sampling_precision="float32",
    ).fit(adult_small, epochs=1, batch_size=100, show_progress=False)
    exact = synth.sample(300, seed=4)
    synth.save(tmp_path / "m")
    loaded = TabularSynthesizer.load(tmp_path / "m")
    assert loaded.sampling_precision == "float32"
    assert loaded.sample(300, seed=4).equals(exact)
    loaded.sampling_precision = "bfloat16"
    fast = loaded.sample(300, seed=4)
    assert len(fast) == 300 and list(fast.columns) == list(exact.columns)
    assert fast.equals(loaded.sample(300, seed=4))
    with pytest.raises(InvalidOptionError, match="sampling_precision"):
        loaded.sampling_precision = "float16"


# ------------------------------------------------------------------ moving average of the generator
def test_update_ema_moves_weights_by_one_minus_decay_and_copies_buffers():
    from engine.core.ema import ema_copy, ema_decay, update_ema

    current = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = ema_copy(current)
    with torch.no_grad():
        for p in current.parameters():
            p.add_(1.0)
        current[1].running_mean.fill_(5.0)
    before = [p.clone() for p in average.parameters()]
    update_ema(average, current, decay=0.75)
    for b, a, c in zip(before, average.parameters(), current.parameters()):
        assert torch.allclose(a, 0.75 * b + 0.25 * c)
    assert torch.equal(average[1].running_mean, torch.full((2,), 5.0))
    assert not any(p.requires_grad for p in average.parameters())
    assert ema_decay(0.998, 0) == pytest.approx(0.1) and ema_decay(0.998, 10_000) == 0.998
    assert ema_decay(0.998, 0, warmup=False) == 0.998


def test_ctgan_generates_from_the_moving_average_and_loads_models_saved_without_it():
    model = _ctgan()
    assert "generator_ema" in model.shadow_nets
    with torch.no_grad():
        for p in model.shadow_nets["generator_ema"].parameters():
            p.zero_()  # an average of all-zero weights: every raw output is 0
    rows = model.generate(2000, None, torch.Generator().manual_seed(5))
    assert np.allclose(rows[:, 0], 0.0)  # tanh(0)
    # Equal logits: each category of the 4-way colour block about a quarter of the time.
    assert np.allclose(rows[:, 4:8].mean(axis=0), 0.25, atol=0.04)

    # A model saved before the average existed; its weights differ from a fresh model's.
    saved = {k: v + 1.0 if k.startswith("generator.") and v.is_floating_point() else v
             for k, v in _ctgan().state_tensors().items() if not k.startswith("generator_ema.")}
    loaded = _ctgan()
    loaded.load_state_tensors(saved)
    for key, t in loaded.shadow_nets["generator_ema"].state_dict().items():
        assert torch.equal(t, saved[f"generator.{key}"]), key

    plain = CTGAN(CTGANConfig(embedding_dim=8, generator_dims=(16,), discriminator_dims=(16,), pac=2, ema_decay=0.0), LAYOUT)
    assert "generator_ema" not in plain.shadow_nets
    with pytest.raises(InvalidOptionError, match="ema_decay"):
        CTGANConfig(ema_decay=1.0)
