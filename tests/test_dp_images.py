"""DP-DCGAN through DPSynthesizer (engine.privacy.images, engine.privacy.models.dp_dcgan).

One Ray Train run in this file: the module fixture trains a tiny conditional DP-DCGAN on
16x16 images with 2 workers once; the other tests read it or fail before Ray starts.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.core.errors import InvalidOptionError
from engine.privacy.accounting import epsilon_spent
from engine.privacy.errors import PrivacyBudgetError
from engine.privacy.synthesizer import DPSynthesizer

pytestmark = [
    pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha"),  # eps = 10 in 6 steps: the bound is still valid
    pytest.mark.filterwarnings("ignore:Full backward hook is firing"),
]

TINY = {"latent_dim": 8, "generator_width": 4, "discriminator_width": 4}
CLASSES = ["dot", "bar", "box"]


def _images(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """16x16 grey images of three drawn classes (a dot, a bar, a box) with pixel noise, and their labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 40, size=(n, 16, 16), dtype=np.uint8)
    x[y == 0, 6:10, 6:10] = 255
    x[y == 1, :, 7:9] = 255
    x[y == 2, 2:14, 2] = x[y == 2, 2:14, 13] = x[y == 2, 2, 2:14] = x[y == 2, 13, 2:14] = 255
    return x, np.asarray(CLASSES, dtype=object)[y]


@pytest.fixture(scope="module")
def trained(ray_session):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    x, y = _images()
    dp = DPSynthesizer(
        epsilon=10.0, delta=1e-5, model="dp_dcgan", num_workers=2, expected_batch_size=30,
        public_categories={"label": CLASSES}, model_config=TINY,
    )
    dp.fit(x, labels=list(y), epochs=2, seed=1)
    yield dp, x, y
    torch.set_num_threads(old)


def test_epsilon_spent_is_the_accountants(trained):
    from opacus.accountants import RDPAccountant

    dp, x, _ = trained
    info = dp.privacy_
    q = 30 / len(x)
    assert info["sample_rate"] == pytest.approx(q)
    # 2 epochs at q = 1/3: 6 discriminator steps, all taken (the noise was solved for them).
    assert info["steps"] == 6 and dp.synthesizer_._model.private_steps == 6
    # Opacus' own accountant stepped one step at a time: the reference the training share must equal.
    acc = RDPAccountant()
    for _ in range(6):
        acc.step(noise_multiplier=info["noise_multiplier"], sample_rate=q)
    assert info["epsilon_training"] == pytest.approx(acc.get_epsilon(delta=info["delta_training"]), rel=1e-9)
    counts = dp.ledger_.releases[0]
    assert counts.what.startswith("class counts") and counts.epsilon == pytest.approx(0.05 * 10.0)
    assert dp.epsilon_spent_ == pytest.approx(counts.epsilon + info["epsilon_training"])
    assert dp.epsilon_spent_ <= dp.epsilon and dp.delta_spent_ <= dp.delta
    # The noise was solved for the budget: spending it nearly all (to the solver's 0.01 tolerance).
    assert dp.epsilon_spent_ > dp.epsilon - 0.05


def test_discriminator_has_no_batchnorm_and_opacus_accepts_it(trained):
    from opacus.validators import ModuleValidator

    from engine.images.models.dcgan import DCGANConfig, DCGANModel

    dp, _, _ = trained
    model = dp.synthesizer_._model
    d = model.unwrapped("discriminator")
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in d.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) and m.num_groups == 1 for m in d.modules())
    assert ModuleValidator.validate(d, strict=False) == []
    # The validator can fail: the plain DCGAN's discriminator (BatchNorm) is refused.
    plain = DCGANModel(DCGANConfig(**TINY), model.layout)
    assert ModuleValidator.validate(plain.unwrapped("discriminator"), strict=False)
    # And the DP model refuses BatchNorm by name.
    from engine.core.params import check_model_config
    from engine.privacy.models.dp_dcgan import DPDCGAN

    with pytest.raises(InvalidOptionError, match="discriminator_norm"):
        check_model_config(DPDCGAN, {"discriminator_norm": "batch"}, owner="DPDCGAN")


def test_sampling_exact_count_shape_and_labels(trained):
    dp, _, _ = trained
    out = dp.sample(None, labels={"box": 5, "dot": 7}, seed=3)
    assert out.images.shape == (12, 16, 16, 1) and out.images.dtype == np.uint8
    assert [out.class_names[c] for c in out.labels] == ["box"] * 5 + ["dot"] * 7
    table = dp.synthesizer_.sample_table(9, conditions={"label": "bar"}, seed=4)
    assert table.num_rows == 9 and set(table.column("label").to_pylist()) == {CLASSES.index("bar")}
    mix = dp.sample(40, seed=5)  # labels drawn from the released (noisy) class frequencies
    assert len(mix.images) == 40 and set(mix.labels) <= {0, 1, 2}
    freqs = dp.synthesizer_.class_frequencies_
    assert freqs.sum() == pytest.approx(1.0) and not np.allclose(freqs, 1 / 3)  # noisy, not the real (equal) shares


def test_describe_report_and_artifact_keep_the_guarantee(trained, tmp_path):
    from engine import load_synthesizer

    dp, _, _ = trained
    card = dp.describe()["privacy"]
    for key in ("epsilon_spent", "delta", "noise_multiplier", "max_grad_norm", "accountant", "steps"):
        assert card[key] == dp.privacy_[key]
    path = dp.save(str(tmp_path / "dp"))
    saved = json.loads((tmp_path / "dp" / "model_state.json").read_text())["privacy"]
    assert saved["epsilon_spent"] == pytest.approx(dp.epsilon_spent_)
    loaded = load_synthesizer(path)
    assert loaded.model == "dp_dcgan"
    assert loaded.describe()["privacy"]["epsilon_spent"] == pytest.approx(dp.epsilon_spent_)
    np.testing.assert_allclose(loaded.class_frequencies_, dp.synthesizer_.class_frequencies_)
    a, b = dp.sample(6, labels="bar", seed=9), loaded.sample(6, labels="bar", seed=9)
    np.testing.assert_array_equal(a.images, b.images)


def test_budget_too_small_for_one_step_is_a_clear_error():
    x, y = _images(60)
    dp = DPSynthesizer(
        epsilon=0.05, delta=1e-5, model="dp_dcgan", noise_multiplier=0.5, expected_batch_size=30,
        public_categories={"label": CLASSES}, model_config=TINY,
    )
    with pytest.raises(PrivacyBudgetError, match="too small to train one step"):
        dp.fit(x, labels=list(y), epochs=1)  # refused by the plan, before Ray starts


def test_images_of_an_unlisted_class_are_refused():
    x, y = _images(60)
    dp = DPSynthesizer(epsilon=1.0, model="dp_dcgan", public_categories={"label": ["dot", "bar"]}, model_config=TINY)
    with pytest.raises(Exception, match="'box'"):
        dp.fit(x, labels=list(y), epochs=1)


def test_private_class_release_drops_a_rare_class():
    """Without public class names, a class held by one image does not survive the stability histogram."""
    from engine.images.io import ImageSet
    from engine.privacy.accounting import PrivacyLedger
    from engine.privacy.images import _classes

    x, y = _images(90)
    y = y.copy()
    y[0] = "unique"
    names = sorted(set(y))
    image_set = ImageSet(x[..., None], np.array([names.index(v) for v in y]), names)
    dp = DPSynthesizer(epsilon=10.0, delta=1e-5, model="dp_dcgan")
    ledger = PrivacyLedger(10.0, 1e-5)
    kept, freqs, _ = _classes(dp, image_set, ledger, np.random.default_rng(0))
    assert sorted(kept.class_names) == sorted(CLASSES) and len(kept) == 89
    assert ledger.epsilon_spent == pytest.approx(1.0) and ledger.delta_spent == pytest.approx(1e-6)
    assert len(freqs) == 3 and freqs.sum() == pytest.approx(1.0)


def test_image_report_prints_the_guarantee(trained):
    dp, x, y = trained
    report = dp.evaluate(x, list(y), inception=False, max_images=30, domain_epochs=1)
    assert report.details["dp_guarantee"]["epsilon_spent"] == pytest.approx(dp.epsilon_spent_)
    assert f"epsilon {dp.epsilon_spent_:.4g} spent of 10" in report.summary()
    assert "noise multiplier" in report.to_html()


@pytest.fixture
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_discriminator_update_is_the_clipped_per_image_mean(one_thread):
    """One DP-DCGAN step (no noise, SGD at lr 1) against plain torch: real and generated images one by one, clipped, averaged."""
    import copy

    import torch.nn.functional as F

    from engine.images.transforms import ImageLayout
    from engine.privacy.models.dp_dcgan import DPDCGAN, DPDCGANConfig

    torch.manual_seed(0)
    layout = ImageLayout(1, 16, 16, tuple(CLASSES))
    model = DPDCGAN(DPDCGANConfig(**TINY, noise_multiplier=0.0, max_grad_norm=0.05, sample_rate=0.5, class_frequencies=(1, 1, 2)), layout)
    d0, g0 = copy.deepcopy(model.unwrapped("discriminator")), copy.deepcopy(model.unwrapped("generator"))  # before Opacus' hooks
    opts = model.configure_optimizers()
    opt_d = opts["discriminator"]
    opt_d.original_optimizer = torch.optim.SGD(opt_d.original_optimizer.param_groups[0]["params"], lr=1.0)
    x, y = _images(12)
    rows = np.concatenate([x.reshape(12, -1) / 127.5 - 1.0, np.array([CLASSES.index(v) for v in y])[:, None]], axis=1).astype(np.float32)
    model.batch_sampler(rows, 8, np.random.default_rng(0))  # expected batch: 0.5 * 12 = 6 images
    batch = {"real": torch.from_numpy(rows[:5]), "labels_fake": torch.tensor([0, 1, 2, 2, 1, 0]), "labels_g": torch.tensor([2, 2, 1, 0, 0, 1])}
    gen = torch.Generator().manual_seed(3)
    gen_copy = torch.Generator().manual_seed(3)
    model.train_step(batch, opts, gen)

    params = list(d0.parameters())
    with torch.no_grad():
        fake = g0(torch.randn(6, TINY["latent_dim"], generator=gen_copy), batch["labels_fake"])
    real = torch.from_numpy(rows[:5, :-1]).reshape(5, 1, 16, 16)
    images, labels = torch.cat([real, fake]), torch.cat([torch.from_numpy(rows[:5, -1]).long(), batch["labels_fake"]])
    targets = torch.tensor([1.0] * 5 + [0.0] * 6)
    expected = [torch.zeros_like(p) for p in params]
    for i in range(11):  # plain torch, one image (5 real, then 6 generated) at a time
        si = d0(images[i : i + 1], labels[i : i + 1])
        g = torch.autograd.grad(F.binary_cross_entropy_with_logits(si, targets[i : i + 1]), params)
        norm = float(torch.sqrt(sum((gi**2).sum() for gi in g)))
        assert norm > 0.05  # the clipping is active: a missing clip would fail below
        for e, gi in zip(expected, g):
            e += gi * min(1.0, 0.05 / (norm + 1e-6)) / (6 + 6)  # expected real images + generated ones
    for p0, p, e in zip(params, model.unwrapped("discriminator").parameters(), expected):
        torch.testing.assert_close(p0.detach() - p.detach(), e, atol=1e-6, rtol=1e-4)
