"""MST (McKenna, Miklau & Sheldon 2021): a non-neural DP synthesizer from noisy marginals, on NumPy.

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
"""
from __future__ import annotations

import math
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
class MST:
    """Fitted MST: the domain, the tree and its noisy marginals.

    Args:
        num_bins: equal-width bins of each numeric column's (public or private) range.
    """

    num_bins: int = 32
    columns_: list[str] = field(default_factory=list)
    sizes_: list[int] = field(default_factory=list)
    one_way_: list[np.ndarray] = field(default_factory=list)
    edges_: list[tuple[int, int]] = field(default_factory=list)
    two_way_: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    rho_: float = 0.0

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_bins": self.num_bins, "columns": self.columns_, "sizes": self.sizes_, "rho": self.rho_,
            "one_way": [m.tolist() for m in self.one_way_], "edges": [list(e) for e in self.edges_],
            "two_way": [self.two_way_[tuple(e)].tolist() for e in self.edges_],
        }
