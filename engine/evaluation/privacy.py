"""Privacy diagnostics: is the synthetic table distinct from the rows it was trained on?

All distances are Euclidean on the feature encoding of ``features.py``,
computed on bounded random samples (the sizes are reported). These numbers
are diagnostics of specific risks, not guarantees: only differential privacy
gives a guarantee.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from engine.evaluation.features import FeatureEncoder
from engine.schema.kinds import TableSchema

SAMPLE_ROWS = 5_000


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=n, random_state=seed) if len(frame) > n else frame


def privacy_metrics(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None,
    schema: TableSchema,
    *,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """DCR, exact copies, NNDR and (with a holdout) the closer-to-train share and a membership attack."""
    n = min(sample_rows, len(train), len(holdout) if holdout is not None else len(train))
    tr = _sample(train, n, seed)
    sy = _sample(synthetic, sample_rows, seed + 1)
    features = FeatureEncoder(schema).fit(tr)
    x_tr, x_sy = features.transform(tr), features.transform(sy)
    nn_tr = NearestNeighbors(n_neighbors=2).fit(x_tr)
    dist, _ = nn_tr.kneighbors(x_sy)
    dcr_train = dist[:, 0]
    nndr = dist[:, 0] / np.maximum(dist[:, 1], 1e-12)
    # Exact copies are counted on the whole tables by row hashes, not on float distances.
    columns = list(train.columns)
    train_hashes = pd.util.hash_pandas_object(train[columns].astype(str), index=False)
    exact = pd.util.hash_pandas_object(synthetic[columns].astype(str), index=False).isin(train_hashes).to_numpy()
    out: dict[str, Any] = {
        "sample_rows": {"train": len(tr), "synthetic": len(sy)},
        "dcr_synthetic_to_train": _summary(dcr_train),
        "exact_copy_rate": float(exact.mean()),
        "nndr_median": float(np.median(nndr)),
        "histograms": {"dcr_synthetic_to_train": dcr_train.tolist()[:2000]},
    }
    if holdout is not None:
        ho = _sample(holdout, n, seed + 2)
        x_ho = features.transform(ho)
        out["sample_rows"]["holdout"] = len(ho)
        dcr_holdout_to_train = nn_tr.kneighbors(x_ho, n_neighbors=1)[0][:, 0]
        dcr_sy_to_ho = NearestNeighbors(n_neighbors=1).fit(x_ho).kneighbors(x_sy)[0][:, 0]
        # Ties (e.g. identical rows in train and holdout) count half: an exact 50% is the ideal.
        closer = (dcr_train < dcr_sy_to_ho).mean() + 0.5 * (dcr_train == dcr_sy_to_ho).mean()
        # Membership inference: members (train rows) should not be closer to the synthetic data than non-members.
        nn_sy = NearestNeighbors(n_neighbors=1).fit(x_sy)
        d_members = nn_sy.kneighbors(x_tr)[0][:, 0]
        d_non_members = nn_sy.kneighbors(x_ho)[0][:, 0]
        labels = np.r_[np.ones(len(d_members)), np.zeros(len(d_non_members))]
        mia_auc = roc_auc_score(labels, -np.r_[d_members, d_non_members])
        out.update(
            {
                "dcr_holdout_to_train": _summary(dcr_holdout_to_train),
                "closer_to_train_share": float(closer),
                "membership_inference_auc": float(mia_auc),
            }
        )
        out["histograms"]["dcr_holdout_to_train"] = dcr_holdout_to_train.tolist()[:2000]
    return out


def _summary(d: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(d)), "p05": float(np.quantile(d, 0.05)), "mean": float(d.mean())}


def privacy_readings(p: dict[str, Any]) -> list[str]:
    """Plain-language reading of each privacy number."""
    lines = [
        f"{p['exact_copy_rate']:.2%} of synthetic rows are exact copies of a training row"
        + (" (none: good)." if p["exact_copy_rate"] == 0 else " (each copy can reveal a real record)."),
        f"Typical distance from a synthetic row to its closest training row: {p['dcr_synthetic_to_train']['median']:.3f}.",
        f"Nearest/second-nearest distance ratio (median) {p['nndr_median']:.2f}: values near 0 mean synthetic rows sit on "
        "single training rows; near 1, between several.",
    ]
    if "closer_to_train_share" in p:
        share = p["closer_to_train_share"]
        lines.append(
            f"{share:.1%} of synthetic rows are closer to a training row than to any holdout row (50% is ideal: the "
            "generator has not memorised its training rows; much more than 50% suggests memorisation)."
        )
        lines.append(
            f"A distance-based membership-inference attack reaches ROC AUC {p['membership_inference_auc']:.3f} "
            "(0.5: it cannot tell training rows from unseen rows; 1.0: it always can)."
        )
        lines.append(
            f"Typical distance from a holdout row to its closest training row: {p['dcr_holdout_to_train']['median']:.3f} "
            "(the yardstick for the synthetic-to-training distance above)."
        )
    lines.append("These are diagnostics of specific risks, not guarantees; only differential privacy bounds what can leak.")
    return lines
