"""AIM (engine.privacy.marginal.AIM): budget accounting, selection, inference, end to end. NumPy only, no Ray."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.privacy.marginal import AIM, epsilon_of, exponential_mechanism, marginal_index, project_to_total, rho_for, workload_candidates
from engine.privacy.synthesizer import DPSynthesizer

sys.path.insert(0, str(Path(__file__).parent))
from test_privacy import PUBLIC, _table  # noqa: E402


def _codes(n: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Columns 0 and 1 equal (5 values), column 2 independent of both (3 values)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, n)
    return np.stack([a, a, rng.integers(0, 3, n)], axis=1), [5, 5, 3]


def _aim(sizes: list[int], **kw) -> AIM:
    m = AIM(**kw)
    m.columns_, m.sizes_ = [f"c{j}" for j in range(len(sizes))], list(sizes)
    return m


def test_budget_is_spent_exactly_and_never_exceeded():
    dp = DPSynthesizer(epsilon=2.0, delta=1e-6, model="aim", num_bins=8, model_config={"num_particles": 3000}, **PUBLIC)
    dp.fit(_table(600), seed=1)
    aim = dp.mst_
    rho = rho_for(2.0, 1e-6)
    parts = [r["rho"] for r in aim.releases_]
    # d one-way measurements, then one selection (eps^2/8) and one measurement (1/(2 sigma^2)) per round.
    assert len(parts) == 3 + 2 * len(aim.selections_)
    assert math.fsum(parts) <= rho and math.fsum(parts) == pytest.approx(rho, rel=1e-8)
    for r, s in zip(aim.releases_[3::2], aim.selections_):
        assert r["rho"] == pytest.approx(s["epsilon"] ** 2 / 8.0)
    assert dp.epsilon_spent_ <= 2.0 and dp.epsilon_spent_ == pytest.approx(2.0, rel=1e-6)
    assert epsilon_of(aim.rho_used_, 1e-6) <= 2.0


def test_exponential_mechanism_probabilities():
    q = np.array([0.0, 1.0, 3.0])
    _, p = exponential_mechanism(q, epsilon=2.0, sensitivity=2.0, rng=np.random.default_rng(0))
    expected = np.exp(0.5 * q) / np.exp(0.5 * q).sum()
    assert p == pytest.approx(expected)
    rng = np.random.default_rng(1)
    picks = np.bincount([exponential_mechanism(q, 2.0, 2.0, rng)[0] for _ in range(3000)], minlength=3) / 3000
    assert picks == pytest.approx(expected, abs=0.03)


def test_candidates_and_weights():
    cands = workload_candidates(3, [5, 5, 3], degree=2)
    # Workload {01, 02, 12}: a pair meets itself fully (2) and the two others in one column (1 + 1); a single meets two pairs.
    assert cands == {(0,): 2.0, (1,): 2.0, (0, 1): 4.0, (2,): 2.0, (0, 2): 4.0, (1, 2): 4.0}
    assert (0, 1, 2) not in workload_candidates(3, [5, 5, 3], degree=3, max_cells=50)  # 75 cells: over the cap
    wide = workload_candidates(10, [2] * 10, degree=3, max_workload=5)  # 120 triples cut to 5, chosen blind to the data
    assert sum(len(c) == 3 for c in wide) == 5 and sum(len(c) == 1 for c in wide) <= 10


def test_selection_picks_the_worst_approximated_marginal():
    codes, sizes = _codes(3000)
    aim = _aim(sizes, degree=2, num_particles=4000, rounds=4).fit(codes, 50.0, np.random.default_rng(0))
    # After the one-way marginals, the model is independent: only the pair (0, 1) is badly approximated.
    assert aim.selections_[0]["clique"] == ["c0", "c1"]


def test_precise_measurements_give_exact_counts():
    codes, sizes = _codes(2000, seed=3)
    aim = _aim(sizes, degree=3, num_particles=6000, rounds=3, sweeps=8).fit(codes, 1e8, np.random.default_rng(0))
    truth = np.bincount(marginal_index(codes, (0, 1, 2), sizes), minlength=75)
    assert aim.model_marginal((0, 1, 2)) == pytest.approx(truth, abs=1.0)  # sigma ~ 1e-4: the counts themselves
    assert project_to_total(np.array([5.0, -1.0, 3.0]), 6.0) == pytest.approx([4.0, 0.0, 2.0])


def test_aim_keeps_a_dependence_end_to_end():
    df = _table(2000)
    dp = DPSynthesizer(epsilon=5.0, delta=1e-6, model="aim", num_bins=8, model_config={"num_particles": 6000}, **PUBLIC)
    out = dp.generate(df, 2000, seed=0)
    assert dp.privacy_["mechanism"].startswith("AIM") and dp.epsilon_spent_ <= 5.0
    gap_real = df[df.color == "red"]["size"].mean() - df[df.color != "red"]["size"].mean()
    gap_syn = out[out.color == "red"]["size"].mean() - out[out.color != "red"]["size"].mean()
    assert gap_syn == pytest.approx(gap_real, abs=4.0)  # about 20 in the data; 0 if no marginal joined them
    assert out["color"].value_counts(normalize=True)["red"] == pytest.approx(0.5, abs=0.05)


def test_rejuvenation_keeps_the_particles_diverse():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 20, 3000)
    codes, sizes = np.stack([a, a, rng.integers(0, 3, 3000)], axis=1), [20, 20, 3]
    fitted = {}
    for min_ess in (0.0, 0.25):  # 0: never resample
        fitted[min_ess] = _aim(sizes, degree=2, num_particles=4000, rounds=4, min_ess=min_ess).fit(codes, 50.0, np.random.default_rng(0))
    # Independent particles: about 1 in 20 lies on the diagonal a == b, so the weights collapse onto ~200 of 4000.
    assert fitted[0.0].ess() < 300 and fitted[0.25].ess() > 5 * fitted[0.0].ess()
    for m in fitted.values():
        joint = m.model_marginal((0, 1)).reshape(20, 20)
        assert np.trace(joint) / joint.sum() > 0.99  # both still know that a == b
