"""Mode-specific normalisation of one continuous column (Xu et al. 2019, section 4.2).

A variational Gaussian mixture (Dirichlet-process prior) finds the modes of
the column; a value is represented by the mode it is drawn to (one-hot) and
its offset from that mode's mean in units of four standard deviations.

Point masses (the "mixed" columns of CTAB-GAN, Zhao et al. 2021): a value that
repeats exactly in at least ``POINT_MIN_SHARE`` of the present values and
``POINT_MIN_ROWS`` rows (the 0 of a capital-gain column, a sentinel such as
99999) becomes a mode of its own, placed before the Gaussian modes; the mixture
is fitted on the other values only. A value on a point mode is encoded with
offset 0 and decodes to the point exactly, so a generator never has to hit a
spike of zero width with a continuous output.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma

_ALPHA_LIMIT = 0.99
MIXTURE_FIT_ROWS = 10_000
POINT_MIN_SHARE = 0.05  # a repeated value is a point mass from this share of the present values...
POINT_MIN_ROWS = 10  # ... and this many rows


@dataclass
class ModeNormalizer:
    """The fitted modes of one column: point masses, then the kept Gaussian components.

    Mode indices ``0..P-1`` are the points (``points``, in increasing order), ``P..P+K-1``
    the Gaussian components (``means``, ``stds``, ``weights``; the weights sum to 1 over the
    values that are not on a point). ``point_shares`` are the points' shares of all present values.
    """

    means: np.ndarray  # (K,)
    stds: np.ndarray  # (K,)
    weights: np.ndarray  # (K,), sums to 1 (or empty when every value is on a point)
    fit_rows: int = 0  # how many values the mixture was fitted on
    points: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (P,) exact repeated values
    point_shares: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (P,)

    @property
    def num_points(self) -> int:
        return len(self.points)

    @property
    def num_modes(self) -> int:
        return len(self.points) + len(self.means)

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        *,
        max_modes: int = 10,
        weight_threshold: float = 0.005,
        max_fit_rows: int = 50_000,
        rng: np.random.Generator,
        point_masses: bool = True,
    ) -> "ModeNormalizer":
        """Fit on at most ``max_fit_rows`` randomly chosen non-missing values.

        ``point_masses=False`` fits the mixture on every value, as the paper does (no point modes).
        """
        x = values[~np.isnan(values)]
        if len(x) > max_fit_rows:
            x = x[rng.choice(len(x), size=max_fit_rows, replace=False)]
        spread = float(x.max() - x.min()) if len(x) else 0.0
        floor = max(spread * 1e-4, 1e-6)
        points = shares = np.zeros(0)
        if point_masses and len(x):
            distinct, counts = np.unique(x, return_counts=True)
            heavy = (counts >= POINT_MIN_ROWS) & (counts >= POINT_MIN_SHARE * len(x))
            if heavy.any():
                points, shares = distinct[heavy], counts[heavy] / len(x)
                rest = x[~np.isin(x, points)]
                if len(rest) == 0:
                    return cls(np.zeros(0), np.zeros(0), np.zeros(0), len(x), points, shares)
                gaussians = cls._fit_mixture(rest, max_modes, weight_threshold, max(float(rest.max() - rest.min()) * 1e-4, floor), rng)
                gaussians.points, gaussians.point_shares, gaussians.fit_rows = points, shares, len(x)
                return gaussians
        return cls._fit_mixture(x, max_modes, weight_threshold, floor, rng)

    @classmethod
    def _fit_mixture(
        cls, x: np.ndarray, max_modes: int, weight_threshold: float, floor: float, rng: np.random.Generator
    ) -> "ModeNormalizer":
        """The Gaussian modes of present values ``x`` (already subsampled to at most ``max_fit_rows``)."""
        spread = float(x.max() - x.min()) if len(x) else 0.0
        distinct = np.unique(x[: min(len(x), 10_000)])
        if len(x) < 2 or spread == 0.0:
            centre = float(x.mean()) if len(x) else 0.0
            return cls(np.array([centre]), np.array([floor]), np.array([1.0]), len(x))
        n_components = int(min(max_modes, len(distinct), len(x)))
        centre, scale = float(x.mean()), float(x.std()) or 1.0
        if len(x) > MIXTURE_FIT_ROWS:
            # One-dimensional modes are well found from 10,000 values; more only costs time.
            x = x[rng.choice(len(x), size=MIXTURE_FIT_ROWS, replace=False)]
        # Repeated values (integer columns) are fitted once, weighted by their count.
        points, counts = np.unique(x, return_counts=True)
        weights, means, stds = _variational_mixture((points - centre) / scale, counts.astype(np.float64), n_components, rng)
        keep = weights > weight_threshold
        if not keep.any():
            keep[np.argmax(weights)] = True
        return cls(
            means=means[keep] * scale + centre,
            stds=np.maximum(stds[keep] * scale, floor),
            weights=weights[keep] / weights[keep].sum(),
            fit_rows=len(x),
        )

    def transform(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(alpha, mode)``: the scaled offset in [-0.99, 0.99] and the sampled mode index per value.

        A value equal to a point mass takes that point's mode and offset 0. Otherwise
        the mode is drawn from the posterior over the Gaussian modes, as in the paper,
        so a value between two modes is sometimes encoded by either. Missing values
        get mode 0 and alpha 0 (the missing flag carries them).
        """
        p_count = self.num_points
        missing = np.isnan(x)
        alpha = np.zeros(len(x))
        mode = np.zeros(len(x), dtype=np.int64)
        on_point = np.zeros(len(x), dtype=bool)
        if p_count:
            at = np.clip(np.searchsorted(self.points, x), 0, p_count - 1)
            on_point = (self.points[at] == x) & ~missing
            mode[on_point] = at[on_point]
            if not len(self.means):
                # Every training value was on a point: a new value takes the nearest one.
                rest = ~on_point & ~missing
                mode[rest] = np.abs(x[rest, None] - self.points[None, :]).argmin(axis=1)
                return alpha, mode
        if len(self.means):
            # The posterior is drawn for every row (one uniform each), so rows' draws do not depend on
            # which other rows sit on points.
            filled = np.where(missing, self.means[0], x)[:, None]  # (n, 1)
            log_p = np.log(self.weights)[None, :] - np.log(self.stds)[None, :] - 0.5 * ((filled - self.means) / self.stds) ** 2
            log_p -= log_p.max(axis=1, keepdims=True)
            p = np.exp(log_p)
            p /= p.sum(axis=1, keepdims=True)
            u = rng.random((len(x), 1))
            k = np.minimum((p.cumsum(axis=1) < u).sum(axis=1), len(self.means) - 1)  # (n,)
            cont = ~on_point & ~missing
            alpha[cont] = np.clip((filled[cont, 0] - self.means[k[cont]]) / (4.0 * self.stds[k[cont]]), -_ALPHA_LIMIT, _ALPHA_LIMIT)
            mode[cont] = p_count + k[cont]
        return alpha, mode

    def inverse(self, alpha: np.ndarray, mode: np.ndarray) -> np.ndarray:
        """Values of ``(alpha, mode)`` pairs: a point mode gives its point exactly, whatever alpha."""
        mode = np.asarray(mode, dtype=np.int64)
        alpha = np.clip(alpha, -1.0, 1.0)
        p_count = self.num_points
        if not p_count:
            return alpha * 4.0 * self.stds[mode] + self.means[mode]
        out = np.empty(len(mode), dtype=np.float64)
        on_point = mode < p_count
        out[on_point] = self.points[mode[on_point]]
        if len(self.means):
            k = mode[~on_point] - p_count
            out[~on_point] = alpha[~on_point] * 4.0 * self.stds[k] + self.means[k]
        return out

    def to_dict(self) -> dict:
        return {
            "means": self.means.tolist(),
            "stds": self.stds.tolist(),
            "weights": self.weights.tolist(),
            "fit_rows": self.fit_rows,
            "points": self.points.tolist(),
            "point_shares": self.point_shares.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ModeNormalizer":
        # States saved before point masses existed have none: they decode as they always did.
        return cls(
            means=np.asarray(d["means"], dtype=np.float64),
            stds=np.asarray(d["stds"], dtype=np.float64),
            weights=np.asarray(d["weights"], dtype=np.float64),
            fit_rows=int(d.get("fit_rows", 0)),
            points=np.asarray(d.get("points", []), dtype=np.float64),
            point_shares=np.asarray(d.get("point_shares", []), dtype=np.float64),
        )


def _variational_mixture(
    x: np.ndarray,
    counts: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    concentration: float = 1e-3,
    max_iter: int = 200,
    tol: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-field variational inference for a 1-D Gaussian mixture with a truncated
    Dirichlet-process (stick-breaking) prior on the weights and Normal-Gamma priors
    on each component; the same model as scikit-learn's BayesianGaussianMixture with
    ``weight_concentration_prior_type="dirichlet_process"``, written for one
    dimension so it runs in milliseconds instead of seconds.

    ``x`` is standardised; ``counts`` weighs each point. Returns the expected weights, means and standard deviations.
    """
    n = len(x)
    w = counts[:, None]  # (n, 1)
    m0, beta0, a0, b0 = 0.0, 1.0, 0.5, 0.5  # weak priors: mean 0, precision ~1 on standardised data
    # Initial responsibilities: nearest of k centres spread over the quantiles, plus jitter.
    cdf = np.cumsum(counts) / counts.sum()
    centres = x[np.searchsorted(cdf, (np.arange(k) + 0.5) / k).clip(0, n - 1)] + rng.normal(0, 1e-3, k)
    r = np.zeros((n, k))
    r[np.arange(n), np.abs(x[:, None] - centres[None, :]).argmin(axis=1)] = 1.0
    prev = None
    for _ in range(max_iter):
        # M-step: posterior parameters from the responsibilities.
        rw = r * w
        nk = rw.sum(axis=0) + 1e-10  # (k,)
        xbar = (rw * x[:, None]).sum(axis=0) / nk
        sk = (rw * (x[:, None] - xbar) ** 2).sum(axis=0) / nk
        stick_a = 1.0 + nk
        stick_b = concentration + np.concatenate([np.cumsum(nk[::-1])[::-1][1:], [0.0]])
        beta = beta0 + nk
        m = (beta0 * m0 + nk * xbar) / beta
        a = a0 + 0.5 * nk
        b = b0 + 0.5 * (nk * sk + beta0 * nk * (xbar - m0) ** 2 / beta)
        # E-step: expected log weights and log likelihoods.
        d_ab = digamma(stick_a + stick_b)
        e_log_v = digamma(stick_a) - d_ab
        e_log_1mv = digamma(stick_b) - d_ab
        e_log_pi = e_log_v + np.concatenate([[0.0], np.cumsum(e_log_1mv)[:-1]])
        e_log_lam = digamma(a) - np.log(b)
        log_rho = e_log_pi + 0.5 * e_log_lam - 0.5 * ((a / b) * (x[:, None] - m) ** 2 + 1.0 / beta)
        log_rho -= log_rho.max(axis=1, keepdims=True)
        r = np.exp(log_rho)
        r /= r.sum(axis=1, keepdims=True)
        ev = stick_a / (stick_a + stick_b)
        weights = ev * np.concatenate([[1.0], np.cumprod(1.0 - ev)[:-1]])
        if prev is not None and np.abs(weights - prev).max() < tol:
            break
        prev = weights
    return weights / weights.sum(), m, np.sqrt(b / a)
