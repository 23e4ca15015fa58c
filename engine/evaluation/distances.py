"""Distances between two sets of image features: FID, KID, precision and recall.

Small stateless functions over ``(N, D)`` float arrays, whichever network made
the features (InceptionV3 for numbers comparable with papers, the domain
classifier for a fast and MNIST-aware reading).

* FID (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to
  the two sets. Biased upwards for small sets, so two FIDs are comparable only
  at the same sample size; the report's real-vs-real floor uses the same size.
* KID (Bińkowski et al. 2018): the unbiased squared MMD with the cubic
  polynomial kernel, averaged over random subsets; unbiased, so near 0 (and
  possibly slightly negative) for two samples of one distribution.
* Precision and recall (Kynkäänniemi et al. 2019): the share of generated
  samples inside the real manifold (k-NN balls around real features), and the
  share of real samples inside the generated manifold.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from engine.core.errors import InvalidDataError


def _features(x: np.ndarray, where: str, min_rows: int = 2) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or len(arr) < min_rows:
        raise InvalidDataError(f"{where} must be an (N, D) array of features with N >= {min_rows}; got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise InvalidDataError(f"{where} holds NaN or infinite features.")
    return arr


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of the features."""
    f = _features(features, "features")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` for two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    with warnings.catch_warnings():
        # Rank-deficient covariances (dead units, fewer samples than dimensions) are common and
        # handled below; scipy's warning about them would only be noise.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():
        # A singular product (fewer samples than dimensions) has no stable root: nudging both
        # covariances by a tiny multiple of the identity gives the limit value.
        eps = np.eye(len(sigma1)) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    # The root of a product of PSD matrices is real in exact arithmetic; round-off leaves a tiny
    # imaginary part, dropped here.
    covmean = np.real(covmean)
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def _frechet_distance_low_rank(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance of two sets that have no more samples than dimensions, without a D x D matrix root.

    With centred features ``A`` (n1 x D) and ``B`` (n2 x D), ``S1 = A'A / (n1 - 1)`` and
    ``S2 = B'B / (n2 - 1)``; the non-zero eigenvalues of ``S1 S2`` are those of ``M M'`` with
    ``M = A B' / sqrt((n1 - 1)(n2 - 1))``, so ``tr((S1 S2)^(1/2))`` is the sum of the singular
    values of the small ``M``. Exact, where ``sqrtm`` of the singular D x D product is slow
    (tens of seconds for Inception's 2048 dimensions) and needs the identity nudge.
    """
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = a - mu_a, b - mu_b
    na, nb = len(a) - 1, len(b) - 1
    trace_covmean = np.linalg.svd(ca @ cb.T / np.sqrt(na * nb), compute_uv=False).sum()
    diff = mu_a - mu_b
    value = float(diff @ diff + np.sum(ca * ca) / na + np.sum(cb * cb) / nb - 2.0 * trace_covmean)
    return max(value, 0.0)


def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """FID between two feature sets (0 for identical sets)."""
    a, b = _features(real, "real features"), _features(synthetic, "synthetic features")
    if a.shape[1] != b.shape[1]:
        raise InvalidDataError(f"real and synthetic features differ in width: {a.shape[1]} vs {b.shape[1]}.")
    if max(len(a), len(b)) <= a.shape[1]:
        # Both covariances are rank-deficient: the exact low-rank form is faster and needs no nudge.
        return _frechet_distance_low_rank(a, b)
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def kernel_distance(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation over subsets of the unbiased MMD² with ``k(x, y) = (x·y / d + 1)^3``."""
    a, b = _features(real, "real features"), _features(synthetic, "synthetic features")
    if a.shape[1] != b.shape[1]:
        raise InvalidDataError(f"real and synthetic features differ in width: {a.shape[1]} vs {b.shape[1]}.")
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx = (x @ x.T / d + 1.0) ** 3
        k_yy = (y @ y.T / d + 1.0) ** 3
        k_xy = (x @ y.T / d + 1.0) ** 3
        # Unbiased: the diagonals (a sample against itself) are left out of the within-set terms.
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[i] = within - 2.0 * k_xy.mean()
    return float(values.mean()), float(values.std())


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    return torch.cat([torch.cdist(a[i : i + chunk], b) for i in range(0, len(a), chunk)])


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = _pairwise_distances(x, x)
    # k + 1 smallest: each point is its own nearest neighbour at distance 0.
    return d.topk(k + 1, dim=1, largest=False).values[:, k]


def _share_inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> float:
    inside = 0
    for i in range(0, len(points), chunk):
        d = torch.cdist(points[i : i + chunk], centres)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / len(points)


def precision_recall(real: np.ndarray, synthetic: np.ndarray, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall with k-nearest-neighbour manifolds (k = 3 as in the paper)."""
    a = torch.as_tensor(_features(real, "real features", k + 1), dtype=torch.float32)
    b = torch.as_tensor(_features(synthetic, "synthetic features", k + 1), dtype=torch.float32)
    precision = _share_inside(b, a, _kth_neighbour_radius(a, k))
    recall = _share_inside(a, b, _kth_neighbour_radius(b, k))
    return precision, recall
