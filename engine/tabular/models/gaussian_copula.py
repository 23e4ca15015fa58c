"""Gaussian copula: per-column marginals joined by a Gaussian dependence structure.

Each column is mapped to a normal score: numeric columns through their
empirical CDF (a bounded grid of quantiles), categorical columns through
disjoint intervals of [0, 1] in order of decreasing frequency (a value's score
is drawn uniformly inside its interval). The scores' correlation matrix is the
copula. Sampling draws correlated normal scores and inverts the marginals.

Category conditions are met natively: the conditioned columns' scores are
drawn inside their categories' intervals (a truncated Gaussian, Gibbs-sampled
when several columns are conditioned jointly) and the other columns come from
the conditional Gaussian given them. No rejection, so a category seen once in
30,000 rows costs the same as a common one.

Missing values: a numeric column's missing values are drawn independently at
the learned rate; a categorical column's missing value is one more category,
so its missingness keeps its correlations.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr, ndtri

from engine.core.errors import InvalidConditionError
from engine.core.params import Int, ModelConfig, param
from engine.tabular.schema.kinds import ColumnKind

_EPS = 1e-6
_GIBBS_SWEEPS = 20


@dataclass
class GaussianCopulaConfig(ModelConfig):
    """Hyperparameters of the Gaussian copula."""

    quantile_grid: int = param(1001, Int(min=3), "points of each numeric column's stored quantile function")
    max_fit_rows: int = param(100_000, Int(min=2), "rows of the random subsample the copula is fitted on")


def _numpy_rng(generator: torch.Generator | np.random.Generator) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return np.random.default_rng(seed)


def _truncated_normal(low: np.ndarray, high: np.ndarray, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw N(mean, std) truncated to [low, high], elementwise, by inverting the CDF."""
    a, b = ndtr((low - mean) / std), ndtr((high - mean) / std)
    u = a + (b - a) * rng.random(mean.shape)
    return mean + std * ndtri(np.clip(u, 1e-15, 1 - 1e-15))


class GaussianCopula:
    """A Gaussian copula over the numeric frame of a table (see the module docstring)."""

    name: ClassVar[str] = "gaussian_copula"
    config_class: ClassVar[type] = GaussianCopulaConfig
    supports_native_conditions: ClassVar[bool] = True

    def __init__(self, config: GaussianCopulaConfig | None = None):
        self.config = config or GaussianCopulaConfig()

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        frame: pd.DataFrame,
        kinds: Mapping[str, ColumnKind],
        *,
        seed: int = 0,
        num_categories: Mapping[str, int] | None = None,
    ) -> "GaussianCopula":
        """Learn marginals and correlations of ``frame`` (numeric frame; codes for categories).

        ``num_categories`` gives, per discrete column, how many codes its encoder
        knows (codes ``0 .. k-1``); without it the largest code seen decides. The
        marginals (category intervals, null rates) come from every row of
        ``frame``; only the correlations are estimated on a subsample of
        ``max_fit_rows`` rows. So a category seen once in a million rows keeps
        its own interval and can be conditioned on.
        """
        rng = np.random.default_rng(seed)
        full = frame
        if len(frame) > self.config.max_fit_rows:
            frame = frame.iloc[rng.choice(len(frame), size=self.config.max_fit_rows, replace=False)]
        self.columns_: list[str] = list(frame.columns)
        self.discrete_: list[bool] = [ColumnKind(kinds[c]).is_discrete for c in self.columns_]
        self.null_rates_: list[float] = []
        self.quantiles_: list[np.ndarray] = []  # numeric: quantile function on the grid; discrete: interval bounds
        probs = np.linspace(0.0, 1.0, self.config.quantile_grid)
        scores = np.zeros((len(frame), len(self.columns_)))
        for j, (name, discrete) in enumerate(zip(self.columns_, self.discrete_)):
            x = frame[name].to_numpy(dtype=np.float64)
            missing = np.isnan(x)
            if discrete:
                all_x = full[name].to_numpy(dtype=np.float64)
                all_missing = np.isnan(all_x)
                self.null_rates_.append(float(all_missing.mean()))
                all_codes = all_x[~all_missing].astype(np.int64)
                k = int(all_codes.max()) + 1 if len(all_codes) else 0
                if num_categories is not None and name in num_categories:
                    k = max(k, int(num_categories[name]))
                # Counts over every row, so the sample's luck never drops a category or shifts the
                # codes; the missing value is one more category, placed last.
                counts = np.bincount(all_codes, minlength=k).astype(np.float64)
                if all_missing.any():
                    counts = np.append(counts, float(all_missing.sum()))
                bounds = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
                bounds[-1] = 1.0
                self.quantiles_.append(bounds)
                codes = np.where(missing, k, np.nan_to_num(x)).astype(np.int64)
                lo, hi = bounds[codes], bounds[codes + 1]
                u = lo + (hi - lo) * rng.random(len(codes))
            else:
                self.null_rates_.append(float(missing.mean()))
                present = x[~missing]
                grid = np.quantile(present, probs) if len(present) else np.zeros_like(probs)
                self.quantiles_.append(grid)
                u = np.full(len(x), 0.5)
                if len(present):
                    # Imported here: scipy.stats costs every process that only samples (a pool actor) 0.4 s.
                    from scipy.stats import rankdata

                    u[~missing] = (rankdata(present, method="average") - 0.5) / len(present)
            scores[:, j] = ndtri(np.clip(u, _EPS, 1 - _EPS))
        self.correlation_ = self._correlation(scores)
        return self

    @staticmethod
    def _correlation(scores: np.ndarray) -> np.ndarray:
        d = scores.shape[1]
        if d == 0:
            return np.zeros((0, 0))
        std = scores.std(axis=0)
        ok = std > 1e-12
        corr = np.eye(d)
        if ok.sum() > 1:
            corr[np.ix_(ok, ok)] = np.corrcoef(scores[:, ok], rowvar=False)
        # Clip eigenvalues so the matrix is positive definite, then rescale to unit diagonal.
        vals, vecs = np.linalg.eigh((corr + corr.T) / 2)
        corr = (vecs * np.maximum(vals, 1e-6)) @ vecs.T
        scale = np.sqrt(np.diag(corr))
        return corr / scale[:, None] / scale[None, :]

    # --------------------------------------------------------------- sample
    def generate_frame(
        self,
        num_rows: int,
        category_conditions: Mapping[str, int] | None,
        generator: torch.Generator | np.random.Generator,
    ) -> pd.DataFrame:
        """``num_rows`` rows of the numeric frame, with the given categories fixed natively."""
        rng = _numpy_rng(generator)
        d = len(self.columns_)
        cond: dict[int, int] = {}
        for c, code in (category_conditions or {}).items():
            j = self.columns_.index(c) if c in self.columns_ else -1
            if j < 0 or not self.discrete_[j] or not 0 <= int(code) < self._num_codes(j):
                raise InvalidConditionError(
                    f"The Gaussian copula cannot condition column {c!r} on code {code!r}: "
                    + (f"it knows codes 0 to {self._num_codes(j) - 1}." if j >= 0 and self.discrete_[j] else "it is not one of its categorical columns.")
                )
            cond[j] = int(code)
        z = np.empty((num_rows, d))
        fixed = np.array(sorted(cond), dtype=np.int64)
        free = np.array([j for j in range(d) if j not in cond], dtype=np.int64)
        if len(fixed):
            low = np.array([ndtri(np.clip(self.quantiles_[j][cond[j]], _EPS, 1 - _EPS)) for j in fixed])
            high = np.array([ndtri(np.clip(self.quantiles_[j][cond[j] + 1], _EPS, 1 - _EPS)) for j in fixed])
            z[:, fixed] = self._sample_box(num_rows, fixed, low, high, rng)
        if len(free):
            cov = self.correlation_
            if len(fixed):
                s_ff = cov[np.ix_(fixed, fixed)]
                s_rf = cov[np.ix_(free, fixed)]
                gain = np.linalg.solve(s_ff, s_rf.T).T  # (r, f)
                mean = z[:, fixed] @ gain.T  # (n, r)
                cond_cov = cov[np.ix_(free, free)] - gain @ s_rf.T
            else:
                mean = np.zeros((num_rows, len(free)))
                cond_cov = cov[np.ix_(free, free)]
            chol = np.linalg.cholesky(cond_cov + 1e-9 * np.eye(len(free)))
            z[:, free] = mean + rng.standard_normal((num_rows, len(free))) @ chol.T
        u = ndtr(z)
        out: dict[str, np.ndarray] = {}
        probs = np.linspace(0.0, 1.0, self.config.quantile_grid)
        for j, name in enumerate(self.columns_):
            if self.discrete_[j]:
                bounds = self.quantiles_[j]
                codes = np.searchsorted(bounds, u[:, j], side="right") - 1
                codes = np.clip(codes, 0, len(bounds) - 2).astype(np.float64)
                if self.null_rates_[j] > 0:
                    codes[codes == len(bounds) - 2] = np.nan  # the last interval is "missing"
                if j in cond:
                    # The score lies in the category's interval, but an interval narrower than the
                    # clipping of the scores (a category of one row in millions) could decode to
                    # its neighbour: the condition fixes the code itself.
                    codes[:] = cond[j]
                out[name] = codes
            else:
                x = np.interp(u[:, j], probs, self.quantiles_[j])
                if self.null_rates_[j] > 0:
                    x[rng.random(num_rows) < self.null_rates_[j]] = np.nan
                out[name] = x
        return pd.DataFrame(out)

    def _num_codes(self, j: int) -> int:
        """Category codes of discrete column ``j`` (its "missing" interval excluded)."""
        return len(self.quantiles_[j]) - 1 - (1 if self.null_rates_[j] > 0 else 0)

    def _sample_box(self, n: int, idx: np.ndarray, low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Normal scores of the conditioned columns, jointly Gaussian and inside their boxes."""
        cov = self.correlation_[np.ix_(idx, idx)]
        m = len(idx)
        z = _truncated_normal(np.broadcast_to(low, (n, m)), np.broadcast_to(high, (n, m)), np.zeros((n, m)), np.ones((n, m)), rng)
        if m == 1:
            return z
        prec = np.linalg.inv(cov)
        for _ in range(_GIBBS_SWEEPS):
            for i in range(m):
                others = [k for k in range(m) if k != i]
                # z_i | z_others under the joint Gaussian, via the precision matrix.
                mean = -(z[:, others] @ prec[i, others]) / prec[i, i]
                std = np.full(n, 1.0 / np.sqrt(prec[i, i]))
                z[:, i] = _truncated_normal(np.full(n, low[i]), np.full(n, high[i]), mean, std, rng)
        return z

    # ---------------------------------------------------------------- state
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON state and arrays (for safetensors); no pickle."""
        state = {
            "config": asdict(self.config),
            "columns": self.columns_,
            "discrete": self.discrete_,
            "null_rates": self.null_rates_,
        }
        arrays = {f"marginal.{j}": q.astype(np.float64) for j, q in enumerate(self.quantiles_)}
        arrays["correlation"] = self.correlation_.astype(np.float64)
        return state, arrays

    @classmethod
    def from_state(cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> "GaussianCopula":
        model = cls(GaussianCopulaConfig(**state["config"]))
        model.columns_ = list(state["columns"])
        model.discrete_ = [bool(b) for b in state["discrete"]]
        model.null_rates_ = [float(r) for r in state["null_rates"]]
        model.quantiles_ = [np.asarray(arrays[f"marginal.{j}"], dtype=np.float64) for j in range(len(model.columns_))]
        model.correlation_ = np.asarray(arrays["correlation"], dtype=np.float64)
        return model
