"""Copies of training samples and a membership attack, on any feature vectors (pixels, spectra, embeddings).

The readings the privacy audit of a table gives, for modalities whose samples are
arrays: how close the generated samples come to the training samples, measured
against how close real samples come to each other; and, with held-out real samples
the generator never saw, whether a generated set sits nearer its training samples
than to unseen ones (a distance attack on membership, as ROC AUC).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from engine.core.errors import InvalidDataError


def _nearest(points: np.ndarray, reference: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
    """Distance from each point to its nearest reference point (the second nearest when they are the same set)."""
    k = 2 if exclude_self else 1
    return NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(points)[0][:, k - 1]


def memorization_scores(train: np.ndarray, synthetic: np.ndarray, holdout: np.ndarray | None = None) -> dict[str, Any]:
    """Copy and membership readings of ``synthetic`` against ``train`` (and unseen ``holdout``) samples.

    All three are ``(n, d)`` feature arrays in one space. Returns:

    - ``exact_copy_rate``: share of synthetic samples equal to a training sample;
    - ``near_copy_rate``: share closer to a training sample than 99% of training samples
      are to their nearest other training sample (about 0.01 when nothing is copied);
    - ``nearest_real_ratio``: median distance of a synthetic sample to its nearest training
      sample over the same for held-out samples (training samples to each other without a
      holdout); well below 1 means the generator sits on its training samples;
    - with ``holdout``: ``dcr_share``, the share of synthetic samples closer to a training
      than to a held-out sample (0.5 ideal), and ``membership_auc``, the ROC AUC of telling
      training from held-out samples by their distance to the nearest synthetic one.
    """
    arrays = {"train": train, "synthetic": synthetic, **({"holdout": holdout} if holdout is not None else {})}
    for name, a in arrays.items():
        if a.ndim != 2 or len(a) < 2:
            raise InvalidDataError(f"Memorization scores need at least 2 {name} samples as an (n, d) array; got shape {a.shape}.")
    train, synthetic = train.astype(np.float32), synthetic.astype(np.float32)
    train, synthetic = np.ascontiguousarray(train), np.ascontiguousarray(synthetic)
    d_syn = _nearest(synthetic, train)
    d_train = _nearest(train, train, exclude_self=True)
    # Equality by content: a distance computed through dot products is rarely exactly 0.
    seen = {row.tobytes() for row in train}
    out: dict[str, Any] = {
        "exact_copy_rate": float(np.mean([row.tobytes() in seen for row in synthetic])),
        "near_copy_rate": float(np.mean(d_syn < np.quantile(d_train, 0.01))),
    }
    if holdout is None:
        out["nearest_real_ratio"] = float(np.median(d_syn) / max(float(np.median(d_train)), 1e-12))
        return out
    holdout = holdout.astype(np.float32)
    out["nearest_real_ratio"] = float(np.median(d_syn) / max(float(np.median(_nearest(holdout, train))), 1e-12))
    d_syn_holdout = _nearest(synthetic, holdout)
    out["dcr_share"] = float(np.mean(d_syn < d_syn_holdout) + 0.5 * np.mean(d_syn == d_syn_holdout))
    members, others = _nearest(train, synthetic), _nearest(holdout, synthetic)
    labels = np.r_[np.ones(len(members)), np.zeros(len(others))]
    out["membership_auc"] = float(roc_auc_score(labels, -np.r_[members, others]))
    return out
