"""Time-series scores, each a stateless function of real and synthetic sequences.

Every function takes ``(values, mask)`` pairs: float ``(n, T, c)`` sequences on a
common scale (the evaluator passes the encoder's min-max scaling to [-1, 1], the
TimeGAN paper's protocol) and ``(n, T)`` masks of real steps (sequences of
different lengths are left-aligned and padded).

- :func:`discriminative_score`: a post-hoc GRU classifier told real from synthetic on a
  held-out split; ``|accuracy - 0.5|`` (0 is best). Yoon et al. 2019.
- :func:`predictive_score`: a GRU trained on synthetic sequences to predict the next
  step of the last channel (from the other channels, or from itself when there is only
  one), tested on real ones: mean absolute error (lower is better; compare with the same
  GRU trained on real data).
- :func:`autocorrelation_distance`, :func:`cross_correlation_distance`: mean absolute
  difference of the per-channel autocorrelations (lags 1..k) and of the channel
  correlation matrix (0 is best; at most 2).
- :func:`marginal_ks`: Kolmogorov-Smirnov statistic per channel on all real steps.
- :func:`dtw_nearest`: DTW distance from each synthetic sequence to its nearest real
  one, against the same for real sequences to their nearest *other* real one; a
  synthetic set much closer than the real-to-real distance is copying training sequences.
- :func:`pca_projection`: the 2-D PCA picture (fitted on real sequences).
- :func:`tsne_projection`: the 2-D t-SNE picture of real and synthetic sequences together
  (at most ``max_points`` of each side, so that it stays quick).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.stats import ks_2samp
from torch import nn


def _lengths(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask).sum(axis=1).astype(np.int64)


class _GRUHead(nn.Module):
    def __init__(self, inputs: int, hidden: int, outputs: int):
        super().__init__()
        self.rnn = nn.GRU(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])  # (B, T, outputs)


def discriminative_score(
    real: np.ndarray, real_mask: np.ndarray, synthetic: np.ndarray, synthetic_mask: np.ndarray, *,
    steps: int = 500, batch_size: int = 128, hidden: int | None = None, lr: float = 1e-3, seed: int = 0,
) -> dict[str, float]:
    """Train a GRU to tell real from synthetic (80 %); ``|accuracy - 0.5|`` on the other 20 %."""
    rng = np.random.default_rng(seed)
    torch_gen = torch.Generator().manual_seed(seed)
    n = min(len(real), len(synthetic))
    ri, si = rng.permutation(len(real))[:n], rng.permutation(len(synthetic))[:n]
    x = np.concatenate([real[ri], synthetic[si]]).astype(np.float32)
    lengths = np.concatenate([_lengths(real_mask[ri]), _lengths(synthetic_mask[si])])
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
    order = rng.permutation(2 * n)
    cut = int(0.8 * len(order))
    train, test = order[:cut], order[cut:]
    c = x.shape[2]
    torch.manual_seed(seed)  # the GRU's initial weights
    net = _GRUHead(c, hidden or max(c // 2, 4), 1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, lt, yt = torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(y)

    def logits(idx: torch.Tensor) -> torch.Tensor:
        out = net(xt[idx])[:, :, 0]  # (B, T)
        return out[torch.arange(len(idx)), (lt[idx] - 1).clamp(min=0)]  # the state after the last real step

    train_t = torch.from_numpy(train)
    for _ in range(steps):
        idx = train_t[torch.randint(len(train_t), (min(batch_size, len(train_t)),), generator=torch_gen)]
        loss = nn.functional.binary_cross_entropy_with_logits(logits(idx), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        test_t = torch.from_numpy(test)
        pred = (logits(test_t) > 0).float()
        acc = float((pred == yt[test_t]).float().mean())
    return {"discriminative_score": abs(acc - 0.5), "classifier_accuracy": acc}


def predictive_score(
    train: np.ndarray, train_mask: np.ndarray, test: np.ndarray, test_mask: np.ndarray, *,
    steps: int = 500, batch_size: int = 128, hidden: int | None = None, lr: float = 1e-3, seed: int = 0,
) -> float:
    """Train a one-step-ahead GRU on ``train`` (synthetic: TSTR), return its MAE on ``test`` (real)."""
    torch.manual_seed(seed)
    torch_gen = torch.Generator().manual_seed(seed)
    c = train.shape[2]
    feats = slice(0, c - 1) if c > 1 else slice(0, 1)

    def split(a: np.ndarray, m: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = torch.from_numpy(np.asarray(a, dtype=np.float32))
        m = torch.from_numpy(np.asarray(m, dtype=np.float32))
        return a[:, :-1, feats], a[:, 1:, c - 1], m[:, 1:] * m[:, :-1]

    xa, ya, ma = split(train, train_mask)
    xb, yb, mb = split(test, test_mask)
    net = _GRUHead(xa.shape[2], hidden or max(c // 2, 4), 1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(len(xa), (min(batch_size, len(xa)),), generator=torch_gen)
        err = (net(xa[idx])[:, :, 0] - ya[idx]).abs() * ma[idx]
        loss = err.sum() / ma[idx].sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        err = (net(xb)[:, :, 0] - yb).abs() * mb
        return float(err.sum() / mb.sum().clamp(min=1))


def autocorrelations(values: np.ndarray, mask: np.ndarray, max_lag: int) -> np.ndarray:
    """Mean autocorrelation per lag (1..max_lag) and channel over sequences, ``(max_lag, c)`` (NaN where undefined)."""
    m = np.asarray(mask, dtype=np.float64)[:, :, None]
    count = m.sum(axis=1, keepdims=True)
    centred = (values - (values * m).sum(axis=1, keepdims=True) / np.maximum(count, 1)) * m
    var = (centred**2).sum(axis=1)  # (n, c)
    out = np.full((max_lag, values.shape[2]), np.nan)
    for lag in range(1, max_lag + 1):
        if lag >= values.shape[1]:
            break
        cov = (centred[:, :-lag] * centred[:, lag:]).sum(axis=1)  # (n, c)
        ok = var > 1e-12
        with np.errstate(invalid="ignore", divide="ignore"):
            acf = np.where(ok, cov / np.where(ok, var, 1), np.nan)
        out[lag - 1] = np.nanmean(acf, axis=0) if np.isfinite(acf).any() else np.nan
    return out


def autocorrelation_distance(real: np.ndarray, real_mask: np.ndarray, synthetic: np.ndarray, synthetic_mask: np.ndarray,
                             max_lag: int = 10) -> float:
    """Mean |ACF_real - ACF_synthetic| over lags 1..``max_lag`` and channels (0 is best)."""
    lag = max(1, min(max_lag, int(_lengths(real_mask).min()) - 1, real.shape[1] - 1))
    a, b = autocorrelations(real, real_mask, lag), autocorrelations(synthetic, synthetic_mask, lag)
    diff = np.abs(a - b)
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")


def _correlation(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    flat = values[np.asarray(mask) > 0.5]  # (steps, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(flat, rowvar=False)
    return np.nan_to_num(np.atleast_2d(corr))


def cross_correlation_distance(real: np.ndarray, real_mask: np.ndarray, synthetic: np.ndarray, synthetic_mask: np.ndarray) -> float | None:
    """Mean |corr_real - corr_synthetic| over the off-diagonal channel pairs (0 is best); None for one channel."""
    c = real.shape[2]
    if c < 2:
        return None
    off = ~np.eye(c, dtype=bool)
    return float(np.abs(_correlation(real, real_mask) - _correlation(synthetic, synthetic_mask))[off].mean())


def marginal_ks(real: np.ndarray, real_mask: np.ndarray, synthetic: np.ndarray, synthetic_mask: np.ndarray,
                names: list[str] | None = None) -> dict[str, float]:
    """Two-sample KS statistic per channel on all real steps (0 is best)."""
    a, b = real[np.asarray(real_mask) > 0.5], synthetic[np.asarray(synthetic_mask) > 0.5]
    names = names or [f"c{i}" for i in range(real.shape[2])]
    return {names[i]: float(ks_2samp(a[:, i], b[:, i]).statistic) for i in range(real.shape[2])}


def _dtw_to_many(query: np.ndarray, q_len: int, refs: np.ndarray, r_lens: np.ndarray) -> np.ndarray:
    """DTW distance (Euclidean step cost) from one sequence to each of ``refs``, vectorised over the references."""
    m, steps = len(refs), refs.shape[1]
    cost = np.sqrt(((query[:q_len, None, None, :] - refs.transpose(1, 0, 2)[None, :, :, :]) ** 2).sum(-1))  # (q, T, m)
    acc = np.full((q_len + 1, steps + 1, m), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, q_len + 1):
        row_prev, row = acc[i - 1], acc[i]
        for j in range(1, steps + 1):
            row[j] = cost[i - 1, j - 1] + np.minimum(np.minimum(row_prev[j], row[j - 1]), row_prev[j - 1])
    return acc[q_len, r_lens, np.arange(m)]


def dtw_nearest(real: np.ndarray, real_mask: np.ndarray, synthetic: np.ndarray, synthetic_mask: np.ndarray, *,
                num_synthetic: int = 50, num_real: int = 200, seed: int = 0) -> dict[str, Any]:
    """DTW distance to the nearest real sequence: synthetic ones vs real ones (to the nearest *other* real)."""
    rng = np.random.default_rng(seed)
    ri = rng.permutation(len(real))[: num_real]
    refs, r_lens = real[ri], _lengths(real_mask[ri])
    si = rng.permutation(len(synthetic))[: num_synthetic]
    s_lens = _lengths(synthetic_mask)
    syn = np.array([_dtw_to_many(synthetic[i], int(s_lens[i]), refs, r_lens).min() for i in si])
    # Real-to-real: held-out real sequences (not among the references) when there are enough, else leave-one-out.
    rest = np.setdiff1d(np.arange(len(real)), ri)
    real_q = []
    lens_all = _lengths(real_mask)
    for k in range(min(num_synthetic, len(real))):
        if len(rest) > k:
            i = rest[k]
            real_q.append(_dtw_to_many(real[i], int(lens_all[i]), refs, r_lens).min())
        else:
            i = ri[k]
            d = _dtw_to_many(real[i], int(lens_all[i]), refs, r_lens)
            d[k] = np.inf
            real_q.append(d.min())
    real_q = np.array(real_q)
    floor = float(np.min(real_q)) if len(real_q) else float("nan")
    return {
        "dtw_nearest_real": float(syn.mean()),
        "dtw_real_to_real": float(real_q.mean()) if len(real_q) else float("nan"),
        "dtw_ratio": float(syn.mean() / real_q.mean()) if len(real_q) and real_q.mean() > 0 else float("nan"),
        "dtw_share_closer_than_any_real": float((syn < floor).mean()) if np.isfinite(floor) else float("nan"),
    }


def pca_projection(real: np.ndarray, real_mask: np.ndarray, synthetic: np.ndarray, synthetic_mask: np.ndarray,
                   max_points: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2-D PCA coordinates of real and synthetic sequences (flattened, padding at 0), fitted on the real ones."""
    rng = np.random.default_rng(seed)
    a = (real * real_mask[:, :, None])[rng.permutation(len(real))[:max_points]].reshape(-1, real.shape[1] * real.shape[2])
    b = (synthetic * synthetic_mask[:, :, None])[rng.permutation(len(synthetic))[:max_points]].reshape(-1, a.shape[1])
    mean = a.mean(axis=0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    basis = vt[:2].T if vt.shape[0] >= 2 else np.pad(vt.T, ((0, 0), (0, 2 - vt.shape[0])))
    return (a - mean) @ basis, (b - mean) @ basis


def tsne_projection(real: np.ndarray, real_mask: np.ndarray, synthetic: np.ndarray, synthetic_mask: np.ndarray,
                    max_points: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE coordinates of (at most ``max_points`` each) real and synthetic sequences, embedded together.

    t-SNE has no transform for new points, so both sides are embedded in one run;
    sequences are flattened with their padding at 0, as for the PCA picture.
    """
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    a = (real * real_mask[:, :, None])[rng.permutation(len(real))[:max_points]].reshape(-1, real.shape[1] * real.shape[2])
    b = (synthetic * synthetic_mask[:, :, None])[rng.permutation(len(synthetic))[:max_points]].reshape(-1, a.shape[1])
    both = np.concatenate([a, b])
    if len(both) < 4:
        raise ValueError(f"t-SNE needs at least 4 sequences; got {len(both)}.")
    # Perplexity must stay below the number of points; 30 (sklearn's default) for the usual sizes.
    perplexity = float(min(30.0, (len(both) - 1) / 3))
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=500).fit_transform(both)
    return coords[: len(a)], coords[len(a):]
