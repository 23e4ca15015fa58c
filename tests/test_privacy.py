"""Differential privacy, PII replacement and the privacy audit (engine.privacy).

One Ray Train run in this file: the module fixture trains DP-CTGAN with 2 workers once.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from engine.core.errors import InvalidOptionError, SynthError
from engine.privacy.accounting import epsilon_spent, max_steps_within, noise_multiplier_for, plan_training
from engine.privacy.errors import PIIError, PrivacyBudgetError
from engine.privacy.synthesizer import DPSynthesizer

warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")




def _table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2])
    x = rng.normal(50, 10, size=n)
    return pd.DataFrame({
        "color": color,
        "size": np.where(color == "red", x + 20, x).round(6),
        "flag": rng.random(n) < 0.3,
    })


PUBLIC = {"public_bounds": {"size": (0.0, 120.0)}, "public_categories": {"color": ["red", "green", "blue"], "flag": [False, True]},
          "nullable_columns": []}


# ------------------------------------------------------------- accounting
def test_accountant_matches_opacus_stepping():
    from opacus.accountants import PRVAccountant, RDPAccountant

    for cls, name in ((RDPAccountant, "rdp"), (PRVAccountant, "prv")):
        acc = cls()
        for _ in range(40):
            acc.step(noise_multiplier=1.3, sample_rate=0.02)
        theirs = acc.get_epsilon(delta=1e-5)
        ours = epsilon_spent(noise_multiplier=1.3, sample_rate=0.02, steps=40, delta=1e-5, accountant=name)
        assert ours == pytest.approx(theirs, rel=1e-9)


def test_noise_for_a_target_epsilon_and_budget_stop():
    sigma = noise_multiplier_for(epsilon=2.0, delta=1e-5, sample_rate=0.05, steps=200)
    spent = epsilon_spent(noise_multiplier=sigma, sample_rate=0.05, steps=200, delta=1e-5)
    assert 1.9 <= spent <= 2.0
    # A fixed noise: the plan cuts the steps exactly where the next one would exceed the budget.
    plan = plan_training(epsilon=1.0, delta=1e-5, sample_rate=0.05, steps=10_000, max_grad_norm=1.0, noise_multiplier=2.0)
    assert 1 < plan.steps < 10_000
    assert epsilon_spent(noise_multiplier=2.0, sample_rate=0.05, steps=plan.steps, delta=1e-5) <= 1.0
    assert epsilon_spent(noise_multiplier=2.0, sample_rate=0.05, steps=plan.steps + 1, delta=1e-5) > 1.0
    assert max_steps_within(epsilon=1.0, delta=1e-5, noise_multiplier=2.0, sample_rate=0.05) == plan.steps


def test_budget_too_small_for_one_step():
    with pytest.raises(PrivacyBudgetError, match="too small to train one step"):
        plan_training(epsilon=1e-3, delta=1e-5, sample_rate=1.0, steps=10, max_grad_norm=1.0, noise_multiplier=0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"epsilon": 0}, "epsilon"), ({"epsilon": -1.0}, "epsilon"), ({"epsilon": float("inf")}, "epsilon"), ({"delta": 1.5}, "delta"),
     ({"model": "nope"}, "model")],
)
def test_bad_constructor_inputs(kwargs, match):
    with pytest.raises(SynthError, match=match):
        DPSynthesizer(**kwargs)


def test_delta_must_be_below_one_over_n():
    with pytest.raises(PrivacyBudgetError, match="below 1/n"):
        DPSynthesizer(epsilon=1.0, delta=0.01, model="mst").fit(_table(200))


# ---------------------------------------------------------- preprocessing
def test_public_preprocessing_reads_no_row():
    from engine.privacy.preprocessing import PrivateTabularEncoder
    from engine.tabular.schema.infer import infer_schema

    df = _table()
    schema = infer_schema(df)
    changed = df.copy()
    changed.loc[0, ["color", "size", "flag"]] = ["blue", 119.0, True]
    changed.loc[1, "size"] = -5.0  # even a value outside the public bounds
    a = PrivateTabularEncoder(**PUBLIC).fit(df, schema)
    b = PrivateTabularEncoder(**PUBLIC).fit(changed, schema)
    assert a.to_dict() == b.to_dict()
    assert a.releases_ == [] and a.epsilon_spent_ == 0.0


def test_private_preprocessing_spends_and_hides_a_unique_value():
    from engine.privacy.preprocessing import PrivateTabularEncoder
    from engine.tabular.schema.infer import infer_schema

    df = _table(400)
    df.loc[7, "color"] = "unique-secret-8f3a"
    schema = infer_schema(df, categorical_columns=["color"])
    enc = PrivateTabularEncoder(epsilon=2.0, delta=1e-6, seed=3).fit(df, schema)
    assert "unique-secret-8f3a" not in enc.codec_.categories("color")
    assert {"red", "green", "blue"} <= set(enc.codec_.categories("color"))
    assert enc.epsilon_spent_ == pytest.approx(2.0) and 0 < enc.delta_spent_ <= 1e-6
    low, high = enc.codec_.numeric_range("size")
    assert 0 < low < 45 and 60 < high < 150  # the data's 0.5%..99.5% range is about 27..92
    with pytest.raises(PrivacyBudgetError, match="need a private release"):
        PrivateTabularEncoder(epsilon=0.0).fit(df, schema)
    with pytest.raises(InvalidOptionError, match="does not have"):
        PrivateTabularEncoder(public_bounds={"nope": (0, 1)}).fit(df, schema)


# ---------------------------------------------------------- DP-SGD maths
def test_dp_tvae_per_row_gradients_and_clipped_update(one_torch_thread):
    """Per-row gradients (torch.func) against plain autograd row by row; the update against a hand-clipped mean."""
    from engine.privacy.dp_sgd import private_step
    from engine.privacy.models.dp_tvae import DPTVAE, DPTVAEConfig
    from engine.privacy.preprocessing import PrivateTabularEncoder
    from engine.tabular.schema.infer import infer_schema

    torch.manual_seed(0)
    df = _table(16)
    enc = PrivateTabularEncoder(**PUBLIC).fit(df, infer_schema(df))
    x = torch.from_numpy(enc.transform(df))
    model = DPTVAE(DPTVAEConfig(embedding_dim=4, compress_dims=(8,), decompress_dims=(8,), noise_multiplier=0.0, max_grad_norm=0.5, lr=0.1), enc.layout_)
    opt = model.configure_optimizers()["vae"]
    opt.original_optimizer = torch.optim.SGD(opt.original_optimizer.param_groups[0]["params"], lr=1.0)
    opt.expected_batch_size = len(x)
    enc_net, dec_net = model.unwrapped("encoder"), model.unwrapped("decoder")
    params = list(enc_net.parameters()) + list(dec_net.parameters())
    before = [p.detach().clone() for p in params]
    eps = torch.randn(len(x), 4)
    named = {f"encoder.{k}": v for k, v in enc_net.named_parameters()} | {f"decoder.{k}": v for k, v in dec_net.named_parameters()}
    grads, _ = torch.func.vmap(torch.func.grad_and_value(model._row_loss), in_dims=(None, 0, 0))({k: v.detach() for k, v in named.items()}, x, eps)
    expected = [torch.zeros_like(p) for p in params]
    for i in range(len(x)):  # plain torch, one row at a time
        mu, logvar = enc_net(x[i : i + 1])
        rec = dec_net(mu + eps[i : i + 1] * torch.exp(0.5 * logvar))[0]
        loss = model.config.loss_factor * _plain_recon(model, x[i], rec, dec_net.sigma) - 0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
        g = torch.autograd.grad(loss, params)
        for (k, _), gi in zip(named.items(), g):
            assert torch.allclose(grads[k][i], gi, atol=1e-5), k
        norm = torch.sqrt(sum((gi**2).sum() for gi in g))
        for e, gi in zip(expected, g):
            e += gi * min(1.0, 0.5 / float(norm + 1e-6))
    for k, p in named.items():
        p.grad_sample = grads[k]
    private_step(opt)
    for p, b, e in zip(params, before, expected):
        assert torch.allclose(b - p.detach(), e / len(x), atol=1e-5)


def _plain_recon(model, x, rec, sigma):
    total = x.new_zeros(())
    for span in model.layout.spans:
        s, e = span.start, span.stop
        if span.activation == "tanh":
            std = sigma[s:e]
            total = total + ((x[s:e] - torch.tanh(rec[s:e])) ** 2 / 2 / std**2).sum() + torch.log(std).sum()
        else:
            total = total + torch.nn.functional.cross_entropy(rec[s:e][None], x[s:e].argmax()[None], reduction="sum")
    return total


# ------------------------------------------------ the one Ray Train run
@pytest.fixture(scope="module")
def trained(ray_session):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    df = _table(240)
    dp = DPSynthesizer(
        epsilon=4.0, delta=1e-4, model="dp_ctgan", num_workers=2, expected_batch_size=60, **PUBLIC,
        model_config={"embedding_dim": 8, "generator_dims": (16,), "discriminator_dims": (16,)},
    )
    dp.fit(df, epochs=2, seed=1)
    yield dp, df
    torch.set_num_threads(old)


def test_two_worker_dp_training_within_budget(trained):
    dp, df = trained
    info = dp.privacy_
    assert dp.epsilon_spent_ <= dp.epsilon
    assert info["steps"] == 8 and dp.synthesizer_._source.model.private_steps == 8  # 2 epochs at q = 60/240
    assert dp.epsilon_spent_ == pytest.approx(
        info["ledger"]["releases"][0]["epsilon"]
        + epsilon_spent(noise_multiplier=info["noise_multiplier"], sample_rate=0.25, steps=8, delta=info["delta_training"])
    )
    # Noise added once on rank 0 and all-reduced: both workers hold the same weights.
    assert len(set(dp.train_result_.rank_state_digests.values())) == 1
    rows = dp.sample(50, seed=3)
    assert len(rows) == 50 and set(rows["color"]) <= {"red", "green", "blue"}


def test_artifact_records_the_guarantee(trained, tmp_path):
    import json

    from engine import load_synthesizer

    dp, _ = trained
    path = dp.save(str(tmp_path / "dp"))
    state = json.loads((tmp_path / "dp" / "model_state.json").read_text())
    saved = state["privacy"]
    assert saved["epsilon_spent"] == pytest.approx(dp.epsilon_spent_)
    for key in ("delta", "accountant", "max_grad_norm", "noise_multiplier"):
        assert saved[key] == dp.privacy_[key]
    loaded = load_synthesizer(path)
    assert loaded.model == "dp_ctgan"
    assert len(loaded.sample(20, seed=1)) == 20


def test_tabular_report_prints_the_guarantee(trained):
    from engine.tabular.metrics.privacy import privacy_readings

    dp, df = trained
    report = dp.evaluate(df, dp.sample(len(df), seed=5), holdout_data=_table(120, seed=9))
    assert report.privacy["dp_guarantee"]["epsilon_spent"] == pytest.approx(dp.epsilon_spent_)
    assert any(line.startswith("Differential privacy guarantee: epsilon = ") for line in privacy_readings(report.privacy))


# ------------------------------------------------------------------- MST
def test_mst_keeps_the_strongest_dependence():
    df = _table(2000)
    dp = DPSynthesizer(epsilon=5.0, delta=1e-6, model="mst", num_bins=8, **PUBLIC)
    out = dp.generate(df, 2000, seed=0)
    assert dp.epsilon_spent_ <= 5.0
    edges = {frozenset(dp.mst_.columns_[i] for i in e) for e in dp.mst_.edges_}
    assert frozenset({"color", "size"}) in edges
    gap_real = df[df.color == "red"]["size"].mean() - df[df.color != "red"]["size"].mean()
    gap_syn = out[out.color == "red"]["size"].mean() - out[out.color != "red"]["size"].mean()
    assert gap_syn == pytest.approx(gap_real, abs=6.0)  # about 20 in the data; 0 if the edge were lost


# ------------------------------------------------------------------- PII
def test_pii_never_reaches_the_output():
    rng = np.random.default_rng(5)
    n = 300
    df = _table(n)
    df["full_name"] = [f"Zyx{i}q Secretson{i}" for i in range(n)]
    df["email"] = [f"secret.{i}.x9@example.org" for i in range(n)]
    df["ssn"] = [f"{rng.integers(100, 999)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}" for _ in range(n)]
    from engine.privacy.pii import detect_pii

    assert detect_pii(df) == {"full_name": "name", "email": "email", "ssn": "ssn"}
    dp = DPSynthesizer(epsilon=3.0, delta=1e-6, model="mst", **PUBLIC)
    out = dp.generate_anonymous(df, pii_columns=["full_name", "email", "ssn"], num_samples=400, seed=2)
    assert list(out.columns) == list(df.columns) and len(out) == 400
    real = set(df["full_name"]) | set(df["email"]) | set(df["ssn"])
    assert not any(out[c].astype(str).isin(real).any() for c in out.columns)
    assert dp.last_pii_report["real_values_in_output"] == 0
    assert out["ssn"].str.fullmatch(r"\d{3}-\d{2}-\d{4}").all()  # the format is kept
    assert out["email"].str.contains("@").all()
    with pytest.raises(PIIError, match="does not have"):
        dp.generate_anonymous(df, pii_columns=["phone"])


def test_utility_threshold_is_an_error_with_the_figure():
    from engine.privacy.errors import UtilityError

    df = _table(400)
    df["email"] = [f"u{i}@example.org" for i in range(len(df))]
    dp = DPSynthesizer(epsilon=0.5, delta=1e-6, model="mst", **PUBLIC)
    with pytest.raises(UtilityError, match=r"ML efficacy on 'color' is [0-9.]+"):
        dp.generate_anonymous(df, pii_columns=["email"], target="color", utility_threshold=10.0)


# ----------------------------------------------------------------- audit
def test_audit_fails_a_copy_and_passes_fresh_rows():
    from engine.privacy.audit import verify_privacy

    train, holdout, fresh = _table(300, seed=1), _table(300, seed=2), _table(300, seed=3)
    copy = verify_privacy(train, train.copy(), holdout=holdout)
    assert copy.exact_copy_rate == 1.0 and copy.dcr_share > 0.95  # ties with identical holdout rows count half
    assert copy.membership_inference_auc > 0.95 and copy.attacks["distance"]["tpr_at_1pct_fpr"] > 0.9
    assert not copy.passed
    ok = verify_privacy(train, fresh, holdout=holdout)
    assert ok.exact_copy_rate < 0.02 and 0.4 < ok.dcr_share < 0.6
    assert all(a["auc"] < 0.6 for a in ok.attacks.values()), ok.attacks
    assert ok.passed
    assert '"exact_copy_rate"' in ok.to_json() and "No differential privacy guarantee" in ok.to_html()
