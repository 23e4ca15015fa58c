"""Marginal-based DP synthesizers on NumPy: MST (McKenna, Miklau & Sheldon 2021) and AIM (below).

Both share the discrete domain and the way back to rows (:class:`MarginalModel`) and spend a
zCDP budget rho on Gaussian measurements of marginals and exponential-mechanism selections.

MST:

Every column is discretised on a domain that is public or released privately (see
:mod:`engine.privacy.preprocessing`: categories, numeric ranges cut into ``num_bins`` equal
bins, a "missing" cell for nullable columns). Then, under zero-concentrated DP (zCDP):

1. the one-way marginal of every column is measured with Gaussian noise (a third of rho);
2. a maximum spanning tree over the columns is chosen, one edge at a time (Kruskal order)
   by the exponential mechanism, scoring each candidate pair by how far its true two-way
   marginal is from the product of the noisy one-way marginals (a third of rho);
3. the two-way marginal of every tree edge is measured with Gaussian noise (a third of rho).

Sampling walks the tree from a root: the root's column from its noisy one-way marginal,
each child from its noisy two-way marginal with the parent, conditioned on the parent's
sampled value; numbers are drawn uniformly inside their bin. Differences from the paper,
stated plainly: no Private-PGM consistency step (negative noisy cells are clipped and each
edge normalised on its own) and no compression of rare categories. The budget is converted
from (epsilon, delta) to rho with the tight conversion eps = rho + 2 sqrt(rho ln(1/delta)).

AIM (McKenna, Mullins, Sheldon & Miklau 2022) measures marginals of a 3-way workload chosen
round by round where the current model is worst; see :class:`AIM` for what differs from the
paper (a weighted particle model instead of Private-PGM).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.privacy.errors import PrivacyBudgetError
from engine.tabular.transforms.tabular import TabularEncoder

_DISCRETE = ("categorical", "boolean")


def rho_for(epsilon: float, delta: float) -> float:
    """The largest zCDP rho whose (epsilon, delta) conversion stays within ``epsilon``."""
    if delta <= 0:
        raise PrivacyBudgetError("MST's Gaussian noise needs delta > 0.")
    log = math.log(1.0 / delta)
    # eps = rho + 2 sqrt(rho log(1/delta)) solved for rho (a quadratic in sqrt(rho)).
    root = -math.sqrt(log) + math.sqrt(log + epsilon)
    rho = root * root
    while rho > 0 and epsilon_of(rho, delta) > epsilon:  # rounding must not take the conversion over epsilon
        rho = math.nextafter(rho, 0.0)
    return rho


def epsilon_of(rho: float, delta: float) -> float:
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


@dataclass
class MarginalModel:
    """What MST and AIM share: the discrete domain of a table and the way back from codes to rows.

    Args:
        num_bins: equal-width bins of each numeric column's (public or private) range.
    """

    num_bins: int = 32
    columns_: list[str] = field(default_factory=list)
    sizes_: list[int] = field(default_factory=list)

    # ------------------------------------------------------------- domain
    def discretise(self, data: pd.DataFrame, encoder: TabularEncoder) -> np.ndarray:
        """Codes ``(n, columns)`` of every modelled column on the encoder's domain (public or private)."""
        codec = encoder.codec_
        frame = codec.to_numeric(data)
        cols, sizes, out = [], [], []
        for st in codec.modelled_columns:
            x = frame[st.name].to_numpy(dtype=np.float64)
            missing = np.isnan(x)
            nullable = bool(encoder.nullable_.get(st.name, False))
            if st.kind in _DISCRETE:
                k = st.num_codes
                codes = np.where(missing, k if nullable else 0, np.nan_to_num(x)).astype(np.int64)
                codes[codes > k] = k if nullable else 0
            else:
                k = self.num_bins
                lo, hi = st.low, st.high
                codes = np.clip(((np.nan_to_num(x, nan=lo) - lo) / max(hi - lo, 1e-12) * k).astype(np.int64), 0, k - 1)
                if nullable:
                    codes[missing] = k
            size = k + int(nullable)  # a nullable column's last cell holds its missing values
            cols.append(st.name)
            sizes.append(size)
            out.append(codes)
        self.columns_, self.sizes_ = cols, sizes
        return np.stack(out, axis=1) if out else np.zeros((len(data), 0), np.int64)

    def decode(self, codes: np.ndarray, encoder: TabularEncoder, rng: np.random.Generator) -> pd.DataFrame:
        """Rows of the original table from sampled codes (numbers uniform inside their bin)."""
        codec = encoder.codec_
        frame: dict[str, np.ndarray] = {}
        for j, st in enumerate(codec.modelled_columns):
            c = codes[:, j].astype(np.float64)
            missing = (codes[:, j] == self.sizes_[j] - 1) & bool(encoder.nullable_.get(st.name, False))
            if st.kind in _DISCRETE:
                c[missing] = np.nan
                frame[st.name] = c
            else:
                width = (st.high - st.low) / self.num_bins
                x = st.low + (c + rng.random(len(c))) * width
                x[missing] = np.nan
                frame[st.name] = x
        return codec.from_numeric(frame, rng=rng, num_rows=len(codes))


@dataclass
class MST(MarginalModel):
    """Fitted MST: the domain, the tree and its noisy marginals."""

    one_way_: list[np.ndarray] = field(default_factory=list)
    edges_: list[tuple[int, int]] = field(default_factory=list)
    two_way_: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    rho_: float = 0.0

    # ---------------------------------------------------------------- fit
    def fit(self, codes: np.ndarray, rho: float, rng: np.random.Generator) -> "MST":
        d = codes.shape[1]
        if rho <= 0:
            raise PrivacyBudgetError(f"MST needs a positive budget; got rho = {rho!r}.")
        self.rho_ = rho
        r1 = r2 = r3 = rho / 3.0
        # 1. One-way marginals: d Gaussian measurements of L2 sensitivity 1 share r1.
        sigma1 = math.sqrt(d / (2.0 * r1)) if d else 0.0
        self.one_way_ = []
        for j in range(d):
            counts = np.bincount(codes[:, j], minlength=self.sizes_[j]).astype(np.float64)
            self.one_way_.append(counts + rng.normal(0, sigma1, size=counts.shape))
        if d < 2:
            self.edges_, self.two_way_ = [], {}
            return self
        n_hat = max(float(np.mean([np.clip(m, 0, None).sum() for m in self.one_way_])), 1.0)
        # 2. The tree: d - 1 exponential-mechanism picks; each score has sensitivity 1 (an L1 distance
        # of counts), so a pick at epsilon_e costs rho = epsilon_e^2 / 8.
        eps_e = math.sqrt(8.0 * r2 / (d - 1))
        probs = [np.clip(m, 0, None) / max(np.clip(m, 0, None).sum(), 1e-12) for m in self.one_way_]
        scores = {}
        for a in range(d):
            for b in range(a + 1, d):
                joint = np.zeros((self.sizes_[a], self.sizes_[b]))
                np.add.at(joint, (codes[:, a], codes[:, b]), 1.0)
                scores[a, b] = float(np.abs(joint - n_hat * np.outer(probs[a], probs[b])).sum())
        parent = list(range(d))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        self.edges_ = []
        for _ in range(d - 1):
            cands = [(a, b) for (a, b) in scores if find(a) != find(b)]
            s = np.array([scores[c] for c in cands])
            logits = eps_e / 2.0 * (s - s.max())
            p = np.exp(logits)
            pick = cands[int(rng.choice(len(cands), p=p / p.sum()))]
            self.edges_.append(pick)
            parent[find(pick[0])] = find(pick[1])
        # 3. Two-way marginals of the tree's edges share r3.
        sigma3 = math.sqrt(len(self.edges_) / (2.0 * r3))
        self.two_way_ = {}
        for a, b in self.edges_:
            joint = np.zeros((self.sizes_[a], self.sizes_[b]))
            np.add.at(joint, (codes[:, a], codes[:, b]), 1.0)
            self.two_way_[a, b] = joint + rng.normal(0, sigma3, size=joint.shape)
        return self

    # ------------------------------------------------------------- sample
    def sample_codes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        d = len(self.columns_)
        out = np.zeros((n, d), dtype=np.int64)
        if d == 0:
            return out
        adj: dict[int, list[int]] = {j: [] for j in range(d)}
        for a, b in self.edges_:
            adj[a].append(b)
            adj[b].append(a)
        done = [False] * d
        for root in range(d):  # a forest when there is no edge: every column its own root
            if done[root]:
                continue
            p = np.clip(self.one_way_[root], 0, None) + 1e-9
            out[:, root] = rng.choice(len(p), size=n, p=p / p.sum())
            done[root] = True
            stack = [root]
            while stack:
                u = stack.pop()
                for v in adj[u]:
                    if done[v]:
                        continue
                    joint = self.two_way_[(u, v)] if (u, v) in self.two_way_ else self.two_way_[(v, u)].T  # (size_u, size_v)
                    cond = np.clip(joint, 0, None) + 1e-9
                    cond = cond / cond.sum(axis=1, keepdims=True)
                    cum = np.cumsum(cond, axis=1)[out[:, u]]  # (n, size_v)
                    out[:, v] = np.minimum((cum < rng.random(n)[:, None]).sum(axis=1), cond.shape[1] - 1)
                    done[v] = True
                    stack.append(v)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_bins": self.num_bins, "columns": self.columns_, "sizes": self.sizes_, "rho": self.rho_,
            "one_way": [m.tolist() for m in self.one_way_], "edges": [list(e) for e in self.edges_],
            "two_way": [self.two_way_[tuple(e)].tolist() for e in self.edges_],
        }


# ====================================================================== AIM
def marginal_index(codes: np.ndarray, clique: tuple[int, ...], sizes: Sequence[int]) -> np.ndarray:
    """The flat cell of every row in the marginal over ``clique`` (row-major over the clique's columns)."""
    idx = np.zeros(len(codes), dtype=np.int64)
    for j in clique:
        idx = idx * sizes[j] + codes[:, j]
    return idx


def cells_of(clique: tuple[int, ...], sizes: Sequence[int]) -> int:
    return int(np.prod([sizes[j] for j in clique], dtype=np.int64))


def project_to_total(y: np.ndarray, total: float) -> np.ndarray:
    """The Euclidean projection of noisy counts ``y`` onto {m >= 0, sum(m) = total}.

    Unlike clipping at 0 (which turns the noise of thousands of empty cells into mass), this
    subtracts one common threshold, so empty cells stay near 0 and the total is kept.
    """
    if total <= 0:
        return np.zeros_like(y)
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - total
    k = np.arange(1, len(u) + 1)
    last = np.flatnonzero(u - css / k > 0)[-1]
    return np.maximum(y - css[last] / (last + 1), 0.0)


def workload_candidates(
    d: int, sizes: Sequence[int], degree: int = 3, max_cells: int = 20_000, max_workload: int | None = None, rng: np.random.Generator | None = None
) -> dict[tuple[int, ...], float]:
    """AIM's candidates: every marginal inside a workload marginal (all ``degree``-way ones), with its weight.

    The weight of candidate ``r`` is ``sum over workload q of |r ∩ q|`` (how much measuring ``r``
    tells about the workload). Candidates with more than ``max_cells`` cells are left out
    (their noise would swamp them; the one-way marginals are always kept). A workload of more
    than ``max_workload`` marginals (wide tables) is cut to a uniformly random subset of that
    size, chosen without looking at the data (as the paper's experiments do), which bounds memory.
    """
    workload = list(itertools.combinations(range(d), min(degree, d)))
    if max_workload is not None and len(workload) > max_workload:
        rng = rng or np.random.default_rng(0)
        workload = [workload[i] for i in sorted(rng.choice(len(workload), size=max_workload, replace=False))]
    out: dict[tuple[int, ...], float] = {}
    for q in workload:
        for k in range(1, len(q) + 1):
            for r in itertools.combinations(q, k):
                if r not in out and (k == 1 or cells_of(r, sizes) <= max_cells):
                    out[r] = float(sum(len(set(r) & set(w)) for w in workload))
    return out


def exponential_mechanism(qualities: np.ndarray, epsilon: float, sensitivity: float, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """Index picked with probability proportional to ``exp(epsilon * q / (2 * sensitivity))``, and the probabilities.

    epsilon-DP for qualities of the given sensitivity; as zCDP it costs ``epsilon**2 / 8``.
    """
    logits = 0.5 * epsilon / sensitivity * (qualities - qualities.max())
    p = np.exp(logits)
    p = p / p.sum()
    return int(rng.choice(len(p), p=p)), p


@dataclass
class AIM(MarginalModel):
    """AIM (McKenna, Mullins, Sheldon & Miklau 2022): adaptive, iterative selection of noisy marginals.

    Under zCDP with budget ``rho``: the one-way marginals are measured first; then, round after
    round, the exponential mechanism picks the candidate marginal (a subset of a 3-way workload
    marginal) whose current model estimate is worst, weighted by its workload weight and
    penalised by the noise its measurement would carry (``sqrt(2/pi) * sigma * cells``), and it
    is measured with Gaussian noise. Budget annealing: ``rounds = 16 * columns`` shares 90% to
    measurements and 10% to selection; when a new measurement barely moves the model (change
    below its expected noise), sigma is halved and the selection epsilon doubled; the last round
    spends whatever remains, so the whole ``rho`` is used and never exceeded.

    Differences from the paper, stated plainly: the model is not Private-PGM's graphical model
    but a weighted set of ``num_particles`` candidate rows drawn from the noisy one-way marginals;
    inference fits the weights to every measurement by iterative proportional fitting towards
    the measurement projected onto non-negative counts with the estimated total (a heuristic
    in place of mirror descent on the exact likelihood), with resampling and one-column moves
    when the weights degenerate (see ``min_ess``). A cell no particle lands in cannot be
    represented, hence the large particle set. Model size limits become a cap on candidate cells.
    All of it is post-processing of the noisy measurements: it costs no budget.

    Args:
        degree: size of the workload's marginals (3: all 3-way marginals).
        max_workload: at most this many workload marginals (a random subset on wide tables).
        max_cells: candidates with more cells are not considered.
        rounds: initial number of rounds for the budget split (None: 16 x columns).
        num_particles: rows of the weighted model.
        sweeps: IPF passes over all measurements after each new one.
        min_ess: when the weights' effective sample size falls below this share of the
            particles, the particles are resampled by weight and each has one column replaced by
            that of another particle (rejuvenation), then refitted; without it a few hundred
            particles end up carrying all the weight.
    """

    degree: int = 3
    max_cells: int = 20_000
    rounds: int | None = None
    num_particles: int = 40_000
    sweeps: int = 2
    min_ess: float = 0.25
    max_workload: int = 600
    rho_: float = 0.0
    rho_used_: float = 0.0
    releases_: list[dict[str, Any]] = field(default_factory=list)
    measurements_: list[tuple[tuple[int, ...], np.ndarray, float]] = field(default_factory=list)
    particles_: np.ndarray | None = None
    weights_: np.ndarray | None = None
    total_: float = 0.0

    def _spend(self, what: str, rho: float) -> None:
        self.releases_.append({"what": what, "rho": float(rho)})
        self.rho_used_ = math.fsum(r["rho"] for r in self.releases_)

    def _measure(self, codes: np.ndarray, clique: tuple[int, ...], sigma: float, rng: np.random.Generator) -> None:
        x = np.bincount(marginal_index(codes, clique, self.sizes_), minlength=cells_of(clique, self.sizes_)).astype(np.float64)
        self.measurements_.append((clique, x + rng.normal(0.0, sigma, size=x.shape), sigma))
        self._spend(f"Gaussian measurement of {[self.columns_[j] for j in clique]} (sigma = {sigma:.4g})", 0.5 / sigma**2)

    def _estimate_total(self) -> None:
        # Each measurement's sum is an unbiased count of rows with variance sigma^2 * cells: inverse-variance mean.
        w = np.array([1.0 / (s * s * len(y)) for _, y, s in self.measurements_])
        t = np.array([y.sum() for _, y, _ in self.measurements_])
        self.total_ = max(float((w * t).sum() / w.sum()), 1.0)

    def model_marginal(self, clique: tuple[int, ...], index: np.ndarray | None = None) -> np.ndarray:
        """The model's counts on ``clique`` (weighted particles)."""
        if index is None:
            index = marginal_index(self.particles_, clique, self.sizes_)
        return np.bincount(index, weights=self.weights_, minlength=cells_of(clique, self.sizes_))

    def _infer(self, index_of: dict[tuple[int, ...], np.ndarray], sweeps: int) -> None:
        targets = [(index_of[c], project_to_total(y, self.total_)) for c, y, _ in self.measurements_]
        w = self.weights_
        for _ in range(sweeps):
            for idx, t in targets:  # later (less noisy) measurements come last and weigh most
                m = np.bincount(idx, weights=w, minlength=len(t))
                ratio = np.where(m > 0, t / np.maximum(m, 1e-300), 1.0)
                w = w * ratio[idx]
                s = w.sum()
                w = w * (self.total_ / s) if s > 0 else np.full_like(w, self.total_ / len(w))
        self.weights_ = w

    def ess(self) -> float:
        """Effective sample size of the particle weights."""
        w = self.weights_
        return float(w.sum() ** 2 / max((w * w).sum(), 1e-300))

    def _rejuvenate(self, index_of: dict[tuple[int, ...], np.ndarray], rng: np.random.Generator) -> None:
        if self.ess() >= self.min_ess * self.num_particles or self.particles_.shape[1] < 2:
            return
        p = self.particles_[rng.choice(self.num_particles, size=self.num_particles, p=_normalised(self.weights_))]
        # Move: one random column of each particle takes the value of another (random) particle, a draw from the model's
        # own one-way marginal; the refit below keeps the moves the measurements agree with.
        col = rng.integers(0, p.shape[1], size=len(p))
        donor = rng.integers(0, len(p), size=len(p))
        rows = np.arange(len(p))
        p[rows, col] = p[donor, col]
        self.particles_ = p
        self.weights_ = np.full(len(p), self.total_ / len(p))
        for c in index_of:
            index_of[c] = marginal_index(p, c, self.sizes_).astype(np.int32)
        self._infer(index_of, self.sweeps + 1)

    def fit(self, codes: np.ndarray, rho: float, rng: np.random.Generator) -> "AIM":
        if rho <= 0:
            raise PrivacyBudgetError(f"AIM needs a positive budget; got rho = {rho!r}.")
        n, d = codes.shape
        self.rho_, self.releases_, self.measurements_, self.rho_used_ = float(rho), [], [], 0.0
        rounds = self.rounds or 16 * max(d, 1)
        sigma = math.sqrt(rounds / (2.0 * 0.9 * rho))
        eps = math.sqrt(8.0 * 0.1 * rho / rounds)
        candidates = workload_candidates(d, self.sizes_, self.degree, self.max_cells, self.max_workload, rng)
        # 1. One-way marginals (d Gaussian measurements at the round's sigma).
        for j in range(d):
            self._measure(codes, (j,), sigma, rng)
        self._estimate_total()
        # The model: particles from the noisy one-way marginals, uniform weights.
        one_way = [project_to_total(y, self.total_) for _, y, _ in self.measurements_]
        self.particles_ = (
            np.stack([rng.choice(len(p), size=self.num_particles, p=_normalised(p)) for p in one_way], axis=1)
            if d else np.zeros((self.num_particles, 0), np.int64)
        )
        self.weights_ = np.full(self.num_particles, self.total_ / self.num_particles)
        cands = list(candidates)
        weight = np.array([candidates[c] for c in cands])
        answers = [np.bincount(marginal_index(codes, c, self.sizes_), minlength=cells_of(c, self.sizes_)).astype(np.float64) for c in cands]
        index_of = {c: marginal_index(self.particles_, c, self.sizes_).astype(np.int32) for c in cands}
        cells = np.array([len(a) for a in answers], dtype=np.float64)
        self._infer(index_of, 1)
        self.selections_: list[dict[str, Any]] = []
        final = d == 0
        while not final:
            left = self.rho_ - self.rho_used_
            if left < 2.0 * (0.5 / sigma**2 + eps**2 / 8.0):
                # The last round spends what is left (a hair less, so rounding cannot go over rho).
                left *= 1.0 - 1e-9
                sigma = math.sqrt(1.0 / (2.0 * 0.9 * left))
                eps = math.sqrt(8.0 * 0.1 * left)
                final = True
            # 2. Selection: the worst-approximated candidate, net of the noise its measurement would add.
            errors = np.array([np.abs(a - self.model_marginal(c, index_of[c])).sum() for c, a in zip(cands, answers)])
            quality = weight * (errors - math.sqrt(2.0 / math.pi) * sigma * cells)
            pick, _ = exponential_mechanism(quality, eps, float(weight.max()), rng)
            clique = cands[pick]
            self._spend(f"exponential-mechanism selection (epsilon = {eps:.4g})", eps**2 / 8.0)
            self.selections_.append({"clique": [self.columns_[j] for j in clique], "sigma": sigma, "epsilon": eps})
            # 3. Measurement, then inference.
            before = self.model_marginal(clique, index_of[clique])
            self._measure(codes, clique, sigma, rng)
            self._estimate_total()
            self._infer(index_of, self.sweeps)
            after = self.model_marginal(clique, index_of[clique])
            self._rejuvenate(index_of, rng)
            if not final and np.abs(after - before).sum() <= math.sqrt(2.0 / math.pi) * sigma * len(before):
                sigma /= 2.0  # annealing: the model already knew this much; measure more precisely from now on
                eps *= 2.0
        for _ in range(3):  # a few last moves so that the sample is drawn from diverse particles
            self._rejuvenate(index_of, rng)
        return self

    def sample_codes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        p = _normalised(self.weights_)
        return self.particles_[rng.choice(len(p), size=n, p=p)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_bins": self.num_bins, "columns": self.columns_, "sizes": self.sizes_, "rho": self.rho_, "rho_used": self.rho_used_,
            "releases": self.releases_, "selections": getattr(self, "selections_", []),
        }


def _normalised(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
    s = p.sum()
    return p / s if s > 0 else np.full(len(p), 1.0 / len(p))
