"""Privacy diagnostics: is the synthetic table distinct from the rows it was trained on?

Distances are Euclidean on the standardised / one-hot encoding of
``features.py`` (scikit-learn ``NearestNeighbors``), computed on bounded
random samples whose sizes are reported. These numbers diagnose specific
risks (copies, memorisation, membership inference); they are not guarantees.
Only differential privacy bounds what can leak.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from engine.tabular.metrics.features import FeatureEncoder
from engine.tabular.schema.kinds import TableSchema

SAMPLE_ROWS = 5_000  # rows of each table the distances are computed on
# k of the k-NN density estimates of the density-ratio attack: 1 keeps the sharp spike a copied row makes
# (a larger k smooths it away); the reference density is what calibrates the score per region.
DENSITY_NEIGHBOURS = 1
HISTOGRAM_POINTS = 2_000  # distances kept for the report's histograms


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=n, random_state=seed) if len(frame) > n else frame


def _summary(d: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(d)), "p05": float(np.quantile(d, 0.05)), "mean": float(d.mean())}


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """64-bit hashes of whole rows (values as text, so 1 and 1.0 differ as the files do)."""
    return pd.util.hash_pandas_object(frame[columns].astype(str), index=False).to_numpy()


def exact_copy_rate(train: pd.DataFrame | np.ndarray, synthetic: pd.DataFrame, columns: list[str] | None = None) -> float:
    """Share of synthetic rows equal to some training row in every column (by row hashes, not float distances).

    ``train`` is the training table or the hashes of its rows (``row_hashes``).
    """
    columns = columns or list(synthetic.columns)
    known = train if isinstance(train, np.ndarray) else row_hashes(train, columns)
    return float(np.isin(row_hashes(synthetic, columns), known).mean())


def _kth_distance(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(reference))
    return NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(queries)[0][:, k - 1]


def density_ratio_attack_auc(x_members: np.ndarray, x_non_members: np.ndarray, x_reference: np.ndarray, x_synthetic: np.ndarray) -> float:
    """ROC AUC of a density-ratio membership attack (in the spirit of DOMIAS).

    A row is called a member when the synthetic data are denser around it than
    real data in general (``x_reference``: real rows the synthesizer never saw,
    disjoint from the non-members scored). Densities are k-NN estimates, so the
    score is ``log d_k(reference) - log d_k(synthetic)``. It catches
    overfitting that is local (dense spots around training rows) even when no
    synthetic row is an exact copy.
    """
    eps = 1e-9
    rows = np.vstack([x_members, x_non_members])
    score = np.log(_kth_distance(x_reference, rows, DENSITY_NEIGHBOURS) + eps) - np.log(
        _kth_distance(x_synthetic, rows, DENSITY_NEIGHBOURS) + eps
    )
    labels = np.r_[np.ones(len(x_members)), np.zeros(len(x_non_members))]
    return float(roc_auc_score(labels, score))


def privacy_metrics(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None,
    schema: TableSchema,
    *,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
    train_hashes: np.ndarray | None = None,
) -> dict[str, Any]:
    """DCR, exact copies, NNDR and (with a holdout) the closer-to-train share and two membership attacks.

    Train and holdout samples have the same size, so that "closer to a training
    row than to a holdout row" is 50% for a generator that did not memorise.
    ``train_hashes`` (row hashes of the whole training table) makes the
    exact-copy rate exact when ``train`` is itself only a sample.
    """
    n = min(sample_rows, len(train), len(holdout) if holdout is not None else len(train))
    tr = _sample(train, n, seed)
    sy = _sample(synthetic, sample_rows, seed + 1)
    features = FeatureEncoder(schema).fit(tr)
    x_tr, x_sy = features.transform(tr), features.transform(sy)
    nn_tr = NearestNeighbors(n_neighbors=2).fit(x_tr)
    dist = nn_tr.kneighbors(x_sy)[0]
    dcr_train = dist[:, 0]
    # NNDR: nearest over second-nearest training row; 0 when the row sits on a training row.
    nndr = np.where(dist[:, 1] > 0, dist[:, 0] / np.maximum(dist[:, 1], 1e-12), 0.0)
    out: dict[str, Any] = {
        "sample_rows": {"train": len(tr), "synthetic": len(sy)},
        "dcr_synthetic_to_train": _summary(dcr_train),
        "exact_copy_rate": exact_copy_rate(train if train_hashes is None else train_hashes, synthetic, schema.names),
        "nndr_median": float(np.median(nndr)),
        "histograms": {"synthetic -> train": dcr_train[:HISTOGRAM_POINTS].tolist()},
    }
    if holdout is None:
        return out
    ho = _sample(holdout, n, seed + 2)
    x_ho = features.transform(ho)
    out["sample_rows"]["holdout"] = len(ho)
    dcr_holdout_to_train = nn_tr.kneighbors(x_ho, n_neighbors=1)[0][:, 0]
    dcr_sy_to_ho = NearestNeighbors(n_neighbors=1).fit(x_ho).kneighbors(x_sy)[0][:, 0]
    # Ties (identical rows in train and holdout) count half: exactly 50% is the ideal.
    closer = (dcr_train < dcr_sy_to_ho).mean() + 0.5 * (dcr_train == dcr_sy_to_ho).mean()
    # Distance attack: members (training rows) should not be closer to the synthetic rows than non-members.
    nn_sy = NearestNeighbors(n_neighbors=1).fit(x_sy)
    d_members, d_non_members = nn_sy.kneighbors(x_tr)[0][:, 0], nn_sy.kneighbors(x_ho)[0][:, 0]
    labels = np.r_[np.ones(len(d_members)), np.zeros(len(d_non_members))]
    out.update(
        {
            "dcr_holdout_to_train": _summary(dcr_holdout_to_train),
            "closer_to_train_share": float(closer),
            "membership_inference_auc": float(roc_auc_score(labels, -np.r_[d_members, d_non_members])),
        }
    )
    if len(x_ho) >= 4 * DENSITY_NEIGHBOURS:
        half = len(x_ho) // 2
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(x_ho))
        ref, non_members = x_ho[order[:half]], x_ho[order[half:]]
        members = x_tr[rng.permutation(len(x_tr))[: len(non_members)]]
        out["density_attack_auc"] = density_ratio_attack_auc(members, non_members, ref, x_sy)
    out["histograms"]["holdout -> train"] = dcr_holdout_to_train[:HISTOGRAM_POINTS].tolist()
    return out


def privacy_readings(p: dict[str, Any]) -> list[str]:
    """Plain-language reading of each privacy number."""
    lines = [
        f"{p['exact_copy_rate']:.2%} of synthetic rows are exact copies of a training row"
        + (" (none: good)." if p["exact_copy_rate"] == 0 else " (each copy can reveal a real record)."),
        f"Typical distance from a synthetic row to its closest training row (DCR): {p['dcr_synthetic_to_train']['median']:.3f}"
        " (0 would mean copies).",
        f"Nearest/second-nearest distance ratio (NNDR, median) {p['nndr_median']:.2f}: near 0, synthetic rows sit on "
        "single training rows; near 1, between several.",
    ]
    if "closer_to_train_share" in p:
        share = p["closer_to_train_share"]
        lines += [
            f"Typical distance from an unseen (holdout) row to its closest training row: {p['dcr_holdout_to_train']['median']:.3f}; "
            "synthetic rows much closer to training rows than this suggest memorisation.",
            f"{share:.1%} of synthetic rows are closer to a training row than to any holdout row (50% is ideal; "
            "much more than 50% suggests the generator memorised its training rows).",
            f"A distance-based membership-inference attack reaches ROC AUC {p['membership_inference_auc']:.3f} "
            "(0.5: it cannot tell training rows from unseen rows; 1.0: it always can).",
        ]
        if "density_attack_auc" in p:
            lines.append(
                f"A density-ratio membership-inference attack reaches ROC AUC {p['density_attack_auc']:.3f} "
                "(same reading; it also catches synthetic rows clustered around training rows)."
            )
    if "holdout_caveat" in p:
        lines.append(p["holdout_caveat"])
    if "dp_guarantee" in p:  # set for models trained with differential privacy (engine.privacy)
        g = p["dp_guarantee"]
        lines.append(
            f"Differential privacy guarantee: epsilon = {g.get('epsilon_spent', float('nan')):.4g} spent of {g.get('epsilon', float('nan')):.4g}, "
            f"delta = {g.get('delta_spent', g.get('delta', float('nan'))):.3g} ({g.get('mechanism', '')}; accountant {g.get('accountant', '-')}, "
            f"noise multiplier {g.get('noise_multiplier', '-')}, clipping norm {g.get('max_grad_norm', '-')})."
        )
    lines.append(
        f"Computed on random samples ({', '.join(f'{k}: {v:,}' for k, v in p.get('sample_rows', {}).items())} rows). "
        "These are diagnostics of specific risks, not guarantees: only differential privacy bounds what can leak."
    )
    return lines
