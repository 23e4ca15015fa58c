"""Issue 22, part B: point masses in numeric columns, TVAE conditioned natively, the QualityReport's binning.

Tiny models trained in this process through the model contract (encoder, batch sampler,
train_step: what each Ray Train worker runs), and one Ray Train run for the front door.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from engine.tabular.metrics import ContingencySimilarity, KSComplement
from engine.tabular.metrics.fidelity import quality_scores
from engine.tabular.models.tvae import TVAE, TVAEConfig
from engine.tabular.schema.infer import infer_schema
from engine.tabular.transforms import ModeNormalizer, TabularEncoder

TINY_TVAE = {"embedding_dim": 8, "compress_dims": (32,), "decompress_dims": (32,)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A 45% and a 4.5% category; x depends on the category; gain is 80% exact zeros, else a long tail."""
    rng = np.random.default_rng(seed)
    c = rng.choice(np.array(["big", "mid", "small", "rare"]), n, p=[0.45, 0.30, 0.205, 0.045])
    x = np.where(c == "rare", 50.0, 0.0) + rng.normal(0, 1, n)
    gain = np.where(rng.random(n) < 0.8, 0.0, rng.exponential(1000, n).round() + 1)
    return pd.DataFrame({"c": c, "x": x, "gain": gain, "g": rng.choice(["a", "b"], n)})


# ------------------------------------------------------------------ 1. point masses
def test_repeated_values_become_exact_modes_beside_the_mixture():
    rng = np.random.default_rng(0)
    n = 4000
    u = rng.random(n)
    x = np.where(u < 0.6, 0.0, np.where(u < 0.7, 99999.0, rng.lognormal(5, 1, n)))
    x[:150] = 7.0  # 3.75%: below the 5% share, stays continuous
    x[150:155] = np.nan
    norm = ModeNormalizer.fit(x, rng=rng)
    np.testing.assert_array_equal(norm.points, [0.0, 99999.0])
    assert norm.point_shares == pytest.approx([np.mean(x[~np.isnan(x)] == 0), np.mean(x[~np.isnan(x)] == 99999)])
    assert norm.num_modes == 2 + len(norm.means)
    alpha, mode = norm.transform(x, rng)
    assert (mode[x == 0] == 0).all() and (mode[x == 99999] == 1).all() and (alpha[(x == 0) | (x == 99999)] == 0).all()
    rest = ~np.isnan(x) & (x != 0) & (x != 99999)
    assert (mode[rest] >= 2).all()
    back = norm.inverse(alpha, mode)
    inside = rest & (np.abs(alpha) < 0.99)  # offsets are clipped at 4 x 0.99 standard deviations, as before
    assert inside.sum() > 0.99 * rest.sum()
    np.testing.assert_allclose(back[inside], x[inside], rtol=1e-6, atol=1e-6)
    # Whatever alpha a generator emits on a point mode, the point comes back exactly.
    wild = norm.inverse(np.array([0.9, -0.7, 0.3]), np.array([0, 1, 0]))
    np.testing.assert_array_equal(wild, [0.0, 99999.0, 0.0])
    # Nine rows of 100 are 9% but fewer than 10 rows: no point mass.
    few = np.concatenate([np.zeros(9), np.arange(1.0, 92.0)])
    assert ModeNormalizer.fit(few, rng=rng).num_points == 0
    assert ModeNormalizer.fit(x, rng=rng, point_masses=False).num_points == 0
    # A state saved before point masses existed loads with none and decodes as it did.
    old = {k: v for k, v in ModeNormalizer.fit(x, rng=np.random.default_rng(1), point_masses=False).to_dict().items() if "point" not in k}
    loaded = ModeNormalizer.from_dict(old)
    assert loaded.num_points == 0 and loaded.inverse(np.array([0.5]), np.array([0]))[0] == pytest.approx(2.0 * loaded.stds[0] + loaded.means[0])


def test_encoder_round_trip_is_exact_on_point_masses_and_a_column_of_points_only():
    df = _table(600)
    df["level"] = np.random.default_rng(1).choice([0, 1, 2], 600)  # integer column: every value a point mass
    enc = TabularEncoder().fit(df, infer_schema(df))
    assert enc.normalizers_["gain"].points.tolist() == [0.0]
    assert enc.normalizers_["level"].points.tolist() == [0.0, 1.0, 2.0] and len(enc.normalizers_["level"].means) == 0
    back = enc.inverse_transform(enc.transform(df), rng=np.random.default_rng(0))
    assert (back["gain"] == df["gain"]).all() and (back["level"] == df["level"]).all()
    assert enc.layout_.spans[[s.column for s in enc.layout_.spans].index("gain") + 1].width == enc.normalizers_["gain"].num_modes


# ------------------------------------------------------------------ 2. TVAE conditioned natively
@pytest.fixture(scope="module")
def trained_tvae():
    """A tiny TVAE trained in-process for 40 epochs of 20 steps on the 2,000-row table."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    df = _table()
    enc = TabularEncoder().fit(df, infer_schema(df))
    torch.manual_seed(0)
    model = TVAE(TVAEConfig(**TINY_TVAE), enc.layout_)
    optimizers = model.configure_optimizers()
    batches = model.batch_sampler(enc.transform(df), 100, np.random.default_rng(0))
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        for batch in batches.epoch():
            losses.append(model.train_step(batch, optimizers, gen)["loss"])
    model.nets.eval()
    torch.set_num_threads(old_threads)
    return df, enc, model, losses


def test_tvae_draws_categories_and_point_masses_at_their_rates(trained_tvae):
    df, enc, model, losses = trained_tvae
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    fake = enc.inverse_transform_spans(model.generate_spans(4000, None, torch.Generator().manual_seed(1)), rng=np.random.default_rng(0))
    share = fake["c"].value_counts(normalize=True)
    assert share["big"] == pytest.approx(0.45, abs=0.06)
    assert share["rare"] == pytest.approx(0.045, abs=0.025)  # argmax decoding would never produce it
    assert (fake["gain"] == 0).mean() == pytest.approx(0.8, abs=0.07)
    assert KSComplement.compute(df["gain"], fake["gain"]) > 0.9


def test_tvae_meets_a_rare_condition_with_the_model(trained_tvae):
    df, enc, model, _ = trained_tvae
    code = enc.category_index("c", "rare")
    fake = enc.inverse_transform_spans(model.generate_spans(1000, {"c": code}, torch.Generator().manual_seed(2)), rng=np.random.default_rng(0))
    assert (fake["c"] == "rare").mean() > 0.5  # 4.5% unconditioned: the decoder follows its conditional vector
    assert fake.loc[fake["c"] == "rare", "x"].mean() > 35  # and the rest of the row with it (x is near 50 for "rare", 0 else)


def test_tvae_trains_on_plain_batches_conditioned_on_each_rows_own_category(trained_tvae):
    _, enc, model, _ = trained_tvae
    x = torch.from_numpy(enc.transform(_table(64, seed=3)))
    cond = model._own_condition(x, torch.Generator().manual_seed(0))
    assert torch.all(cond.sum(dim=1) == 1)
    for j, span in enumerate(model.cond.spans):
        block = cond[:, model.cond.offsets[j] : model.cond.offsets[j] + span.width]
        chosen = block.sum(dim=1) == 1
        assert torch.equal(block[chosen].argmax(dim=1), x[chosen, span.start : span.stop].argmax(dim=1))
    clone = TVAE(TVAEConfig(**TINY_TVAE), enc.layout_)
    metrics = clone.train_step(x, clone.configure_optimizers(), torch.Generator().manual_seed(0))
    assert np.isfinite(metrics["loss"])


def test_front_door_tvae_meets_conditions_natively(ray_session):
    from engine import TabularSynthesizer
    from engine.tabular.sampling.rows import SamplingRequest, generate_rows

    df = _table(1000)
    synth = TabularSynthesizer("tvae", model_config={k: list(v) if isinstance(v, tuple) else v for k, v in TINY_TVAE.items()})
    synth.fit(df, epochs=3, batch_size=100, show_progress=False)
    rows = synth.sample(200, conditions={"c": "rare"}, seed=4)
    assert len(rows) == 200 and (rows["c"] == "rare").all()

    class Counting:  # the fitted source, counting the rows it is asked to draw
        def __init__(self, source):
            self.source, self.drawn = source, 0
            self.supports_native_conditions = source.supports_native_conditions

        def __getattr__(self, name):
            return getattr(self.source, name)

        def draw(self, num_rows, *args):
            self.drawn += num_rows
            return self.source.draw(num_rows, *args)

    source = Counting(synth._source)
    generate_rows(source, synth.constraints_, SamplingRequest(200, synth.parse_conditions({"c": "rare"}), seed=4))
    assert source.supports_native_conditions and source.drawn < 2000  # not thousands of rejected draws per row kept


# ------------------------------------------------------------------ 3. the QualityReport's binning
def test_overall_score_bins_each_table_over_its_own_range_as_the_quality_report():
    # Real x = 0..9 with c = a below 5; synthetic x = 2 * real x (outside the real range from 10 on).
    x = np.arange(10.0)
    real = pd.DataFrame({"x": x, "c": np.where(x < 5, "a", "b")})
    syn = pd.DataFrame({"x": 2 * x, "c": real["c"]})
    schema = infer_schema(real, categorical_columns=["c"], continuous_columns=["x"])
    # Own-range bins (width 0.9 and 1.8): both tables put row i in bin i + 1, the maximum in bin 11: identical.
    assert quality_scores(real, syn, schema)["pairs"]["x / c"]["score"] == pytest.approx(1.0)
    assert ContingencySimilarity.compute(real, syn, ["x"], binning="report") == pytest.approx(1.0)
    # Real-range bins, outer bins open: synthetic 0, 2, 4, 6, 8 (c = a) land in bins 0, 2, 4, 6, 8 and 10..18 (c = b)
    # all in bin 9. Real: ten cells of 0.1. |differences|: 0.6 (real cells unmatched) + 0.4 (b, 9) + 0.2 (a, 6), (a, 8)
    # = 1.2, so the score is 1 - 1.2 / 2 = 0.4.
    assert ContingencySimilarity.compute(real, syn, ["x"]) == pytest.approx(0.4)
    assert quality_scores(real, syn, schema, binning="metric")["pairs"]["x / c"]["score"] == pytest.approx(0.4)
    # The QualityReport's missing values share the maximum's bin: a synthetic 9 where the real value is
    # missing scores 1 there; with the metric's bins the missing row is its own category: 1 - 1/11.
    real_nan = pd.concat([real, pd.DataFrame({"x": [np.nan], "c": ["b"]})], ignore_index=True)
    syn_nine = pd.concat([real, pd.DataFrame({"x": [9.0], "c": ["b"]})], ignore_index=True)
    assert quality_scores(real_nan, syn_nine, schema)["pairs"]["x / c"]["score"] == pytest.approx(1.0)
    assert quality_scores(real_nan, syn_nine, schema, binning="metric")["pairs"]["x / c"]["score"] == pytest.approx(10 / 11)
