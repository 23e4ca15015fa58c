"""The privacy audit: what an attacker could learn from a synthetic table, beside the DP guarantee.

:func:`verify_privacy` measures, on the encoding of ``engine.tabular.metrics.features``:

- the exact-copy rate (synthetic rows equal to a training row in every column);
- distances to closest record (DCR) and the share of synthetic rows closer to a training
  row than to a holdout row (``dcr_share``: 0.5 is ideal), and the NNDR;
- membership inference, each as ROC AUC and TPR at 1% FPR: a distance attack (members
  are closer to synthetic rows), a density-ratio attack (DOMIAS-style), and a shadow-model
  attack: the attacker fits a shadow synthesizer (a Gaussian copula by default) on half of
  its reference rows, learns with a classifier how nearest-neighbour distances to the shadow's
  output separate its members from its non-members, and applies it to the real target;
- attribute inference (in the manner of Anonymeter's, which does not install here without
  downgrading numpy and pyarrow): for each secret column, the attacker knows every other
  column of a target row, takes the nearest synthetic row on those and guesses its secret.
  The risk compares the success on training rows with the success on holdout rows (which
  the generator never saw): ``(train - holdout) / (1 - holdout)``, 0 when the synthetic
  data teach nothing about the training rows beyond the population; a random-row guess is
  the baseline that tells whether the attack works at all.
- singling out (Anonymeter's multivariate attack, in the same manner): the attacker builds
  predicates from synthetic rows (three columns each: equality on a category, ``<=`` or
  ``>=`` the row's value on a number, towards the tail it lies in) and keeps those that pick
  out exactly one synthetic row. The success is the share that pick out exactly one row of a
  training sample, against the same on as many holdout rows; the risk is
  ``(train - holdout) / (1 - holdout)`` as above.

These are diagnostics of specific attacks, not guarantees; for a DP model the report prints
the (epsilon, delta) guarantee beside them. A copy of the training set fails the audit.
"""
from __future__ import annotations

import html
import math
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neighbors import NearestNeighbors

from engine.core.errors import InvalidDataError


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> float:
    """The true-positive rate of the best threshold whose false-positive rate is at most ``fpr``."""
    f, t, _ = roc_curve(labels, scores)
    ok = f <= fpr
    return float(t[ok].max()) if ok.any() else 0.0


def _attack(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"auc": float(roc_auc_score(labels, scores)), "tpr_at_1pct_fpr": tpr_at_fpr(labels, scores)}


def _nn_features(points: np.ndarray, synthetic: np.ndarray, k: int = 3) -> np.ndarray:
    """Distances of each point to its ``k`` nearest synthetic rows (log), the shadow attack's features."""
    d = NearestNeighbors(n_neighbors=min(k, len(synthetic))).fit(synthetic).kneighbors(points)[0]
    return np.log(d + 1e-9)


@dataclass
class PrivacyReport:
    """The audit's figures (see the module docstring); ``passed`` applies the thresholds in ``criteria``."""

    exact_copy_rate: float
    dcr_share: float | None
    membership_inference_auc: float | None
    nndr_median: float
    attacks: dict[str, dict[str, float]] = field(default_factory=dict)
    distances: dict[str, Any] = field(default_factory=dict)
    guarantee: dict[str, Any] | None = None
    criteria: dict[str, float] = field(default_factory=lambda: {"exact_copy_rate_max": 0.0, "dcr_share_max": 0.6, "mia_auc_max": 0.6,
                                                                "attribute_risk_max": 0.5,
                                                                "singling_out_risk_max": 0.5})
    notes: list[str] = field(default_factory=list)
    attribute_inference: dict[str, dict[str, float]] = field(default_factory=dict)
    singling_out: dict[str, Any] = field(default_factory=dict)

    @property
    def attribute_inference_risk(self) -> float | None:
        """The largest attribute-inference risk over the secret columns (None when not measured)."""
        return max((a["risk"] for a in self.attribute_inference.values()), default=None)

    @property
    def passed(self) -> bool:
        c = self.criteria
        ok = self.exact_copy_rate <= c["exact_copy_rate_max"]
        if self.dcr_share is not None:
            ok &= self.dcr_share <= c["dcr_share_max"]
        for a in self.attacks.values():
            ok &= a["auc"] <= c["mia_auc_max"]
        for a in self.attribute_inference.values():  # the lower 95% bound, so that sampling noise alone does not fail it
            ok &= a["risk_ci"][0] <= c.get("attribute_risk_max", 0.5)
        if self.singling_out:
            ok &= self.singling_out["risk_ci"][0] <= c.get("singling_out_risk_max", 0.5)
        return bool(ok)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "attribute_inference_risk": self.attribute_inference_risk, "passed": self.passed}

    def to_json(self, path: str | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, default=float)
        if path:
            with open(path, "w") as f:
                f.write(text)
        return text

    def to_html(self, path: str | None = None) -> str:
        e = html.escape
        rows = [("Exact copies", f"{self.exact_copy_rate:.2%}"), ("NNDR (median)", f"{self.nndr_median:.3f}")]
        if self.dcr_share is not None:
            rows.append(("Synthetic rows closer to train than holdout (0.5 ideal)", f"{self.dcr_share:.1%}"))
        for name, a in self.attacks.items():
            rows.append((f"Membership inference: {name}", f"AUC {a['auc']:.3f}, TPR@1%FPR {a['tpr_at_1pct_fpr']:.3f}"))
        for name, a in self.attribute_inference.items():
            rows.append((f"Attribute inference of {name!r}", f"risk {a['risk']:.3f} (95% CI {a['risk_ci'][0]:.3f} to {a['risk_ci'][1]:.3f}); "
                         f"success {a['train_success']:.3f} on training rows, {a['holdout_success']:.3f} on holdout, baseline {a['baseline_success']:.3f}"))
        if self.singling_out:
            so = self.singling_out
            rows.append(("Singling out", f"risk {so['risk']:.3f} (95% CI {so['risk_ci'][0]:.3f} to {so['risk_ci'][1]:.3f}); "
                         f"{so['queries']} predicates single out a training row {so['train_success']:.1%} of the time, "
                         f"a holdout row {so['holdout_success']:.1%}"))
        g = self.guarantee
        guarantee = (
            f"<p><b>Differential privacy guarantee:</b> epsilon = {g.get('epsilon_spent', float('nan')):.4g} spent of "
            f"{g.get('epsilon', float('nan')):.4g}, delta = {g.get('delta_spent', g.get('delta', float('nan'))):.3g}; "
            f"{e(str(g.get('mechanism', '')))}; accountant {e(str(g.get('accountant', '-')))}, noise multiplier "
            f"{g.get('noise_multiplier', '-')}, clipping norm {g.get('max_grad_norm', '-')}.</p>"
            if g else "<p><b>No differential privacy guarantee</b>: these figures diagnose attacks, they bound nothing.</p>"
        )
        body = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        verdict = "PASSED" if self.passed else "FAILED"
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Privacy audit</title>"
            "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto}td{padding:.3em 1em;border-bottom:1px solid #ddd}</style>"
            f"</head><body><h1>Privacy audit: {verdict}</h1>{guarantee}<table>{body}</table><ul>{notes}</ul></body></html>"
        )
        if path:
            with open(path, "w") as f:
                f.write(page)
        return page


def attribute_inference(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Any,
    *,
    secrets: list[str] | None = None,
    n_attacks: int = 300,
    max_secrets: int = 8,
    tolerance: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Nearest-neighbour attribute inference of each secret column (see the module docstring).

    ``n_attacks`` targets are drawn from the training rows and as many from the holdout rows;
    ``secrets`` defaults to the first ``max_secrets`` modelled columns. A guess of a numeric
    secret succeeds within ``tolerance`` times the training column's 5-95% range (exactly,
    when that range is 0); of a categorical one when equal.
    """
    from engine.tabular.metrics import numeric_values
    from engine.tabular.metrics.features import FeatureEncoder
    from engine.tabular.schema.kinds import ColumnKind

    kinds = {c.name: c.kind for c in schema.columns if c.kind not in (ColumnKind.IDENTIFIER, ColumnKind.CONSTANT)}
    names = list(secrets) if secrets is not None else list(kinds)[:max_secrets]
    unknown = [s for s in names if s not in kinds]
    if unknown:
        raise InvalidDataError(f"Attribute inference: the secret columns {unknown} are not modelled columns of the table ({list(kinds)}).")
    rng = np.random.default_rng(seed)
    k = min(n_attacks, len(train), len(holdout))
    tr = train.iloc[rng.choice(len(train), size=k, replace=False)]
    ho = holdout.iloc[rng.choice(len(holdout), size=k, replace=False)]
    out: dict[str, dict[str, float]] = {}
    for secret in names:
        if len(kinds) < 2:
            break
        feats = FeatureEncoder(schema, exclude=[secret]).fit(train)
        nn = NearestNeighbors(n_neighbors=1).fit(feats.transform(synthetic))
        guess = lambda rows: synthetic[secret].to_numpy()[nn.kneighbors(feats.transform(rows))[1][:, 0]]  # noqa: E731
        baseline_guess = synthetic[secret].to_numpy()[rng.integers(0, len(synthetic), size=k)]
        if kinds[secret].is_numeric:
            lo, hi = np.nanquantile(numeric_values(train[secret]), [0.05, 0.95])
            tol = tolerance * float(hi - lo)

            def hit(g: np.ndarray, truth: pd.Series) -> np.ndarray:
                a, b = numeric_values(pd.Series(g)), numeric_values(truth)
                return (np.abs(a - b) <= tol) | (np.isnan(a) & np.isnan(b))
        else:

            def hit(g: np.ndarray, truth: pd.Series) -> np.ndarray:
                a, b = pd.Series(g, dtype=object).astype(str).to_numpy(), truth.astype(object).astype(str).to_numpy()
                return a == b
        s_tr, s_ho = float(hit(guess(tr), tr[secret]).mean()), float(hit(guess(ho), ho[secret]).mean())
        s_base = float(hit(baseline_guess, tr[secret]).mean())
        denom = max(1.0 - s_ho, 1.0 / k)
        risk = (s_tr - s_ho) / denom
        se = math.sqrt(s_tr * (1 - s_tr) / k + s_ho * (1 - s_ho) / k) / denom
        out[secret] = {"risk": risk, "risk_ci": [risk - 1.96 * se, risk + 1.96 * se], "train_success": s_tr, "holdout_success": s_ho,
                       "baseline_success": s_base, "attacks": k}
    return out


def singling_out(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Any,
    *,
    n_attacks: int = 300,
    columns_per_predicate: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """The multivariate singling-out attack (see the module docstring); ``{}`` when no predicate singles out.

    ``n_attacks`` predicates at most, each kept only if it picks out exactly one synthetic row
    (drawing stops after ``20 * n_attacks`` tries). The training and holdout samples have the
    same size, so that chance alone singles out as often in both.
    """
    from engine.tabular.metrics import numeric_values
    from engine.tabular.schema.kinds import ColumnKind

    kinds = {c.name: c.kind for c in schema.columns if c.kind not in (ColumnKind.IDENTIFIER, ColumnKind.CONSTANT)}
    names = list(kinds)
    if not names or len(synthetic) == 0:
        return {}
    rng = np.random.default_rng(seed)
    k = min(len(train), len(holdout))
    tr = train.iloc[rng.choice(len(train), size=k, replace=False)]
    ho = holdout.iloc[rng.choice(len(holdout), size=k, replace=False)]

    def values(frame: pd.DataFrame, c: str) -> np.ndarray:
        if kinds[c].is_numeric:
            return numeric_values(frame[c])
        return frame[c].astype(object).astype(str).to_numpy()

    cols = {c: (values(synthetic, c), values(tr, c), values(ho, c)) for c in names}
    medians = {c: float(np.nanmedian(v[0])) if kinds[c].is_numeric and np.isfinite(v[0]).any() else 0.0 for c, v in cols.items()}
    width = min(columns_per_predicate, len(names))
    kept = train_hits = holdout_hits = 0
    for _ in range(20 * n_attacks):
        if kept == n_attacks:
            break
        row = int(rng.integers(len(synthetic)))
        masks: list[np.ndarray] = [np.ones(len(synthetic), bool), np.ones(k, bool), np.ones(k, bool)]
        for c in rng.choice(names, size=width, replace=False):
            v = cols[c][0][row]
            for i, arr in enumerate(cols[c]):
                if not kinds[c].is_numeric:
                    masks[i] &= arr == v
                elif np.isnan(v):
                    masks[i] &= np.isnan(arr)
                else:  # towards the tail the value lies in, where a threshold picks out few rows
                    masks[i] &= (arr <= v) if v <= medians[c] else (arr >= v)
        if masks[0].sum() != 1:
            continue
        kept += 1
        train_hits += int(masks[1].sum() == 1)
        holdout_hits += int(masks[2].sum() == 1)
    if not kept:
        return {}
    s_tr, s_ho = train_hits / kept, holdout_hits / kept
    denom = max(1.0 - s_ho, 1.0 / kept)
    risk = (s_tr - s_ho) / denom
    se = math.sqrt(s_tr * (1 - s_tr) / kept + s_ho * (1 - s_ho) / kept) / denom
    return {"risk": risk, "risk_ci": [risk - 1.96 * se, risk + 1.96 * se], "train_success": s_tr, "holdout_success": s_ho,
            "queries": kept, "rows_per_side": k, "columns_per_predicate": width}


def _copula_shadow(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    from engine.tabular.synthesizer import TabularSynthesizer

    return TabularSynthesizer(model="gaussian_copula").fit(frame, seed=seed).sample(len(frame), seed=seed)


def verify_privacy(
    original: Any,
    synthetic: Any,
    *,
    holdout: Any = None,
    guarantee: Mapping[str, Any] | None = None,
    shadow: Callable[[pd.DataFrame, int], pd.DataFrame] | None = _copula_shadow,
    sample_rows: int = 2_000,
    attribute_attacks: int = 300,
    attribute_secrets: list[str] | None = None,
    singling_out_attacks: int = 300,
    seed: int = 0,
) -> PrivacyReport:
    """Audit ``synthetic`` against the training rows ``original`` (and unseen ``holdout`` rows).

    Without ``holdout``, 20% of ``original`` stands in for it (stated in the notes): then those
    rows were trained on, and the train/holdout comparisons understate the risk.
    ``shadow(frame, seed) -> frame`` is the attacker's shadow synthesizer (None: no shadow attack).
    ``attribute_attacks``: targets per secret column and per side of the attribute-inference attack (0: skip it);
    ``attribute_secrets``: the columns an attacker would infer (default: the first 8 modelled columns).
    ``singling_out_attacks``: predicates of the singling-out attack at most (0: skip it).
    """
    from engine.tabular.metrics.features import FeatureEncoder
    from engine.tabular.metrics.privacy import exact_copy_rate
    from engine.tabular.schema.infer import infer_schema
    from engine.tabular.schema.io import read_table

    train, syn = read_table(original), read_table(synthetic)
    notes: list[str] = []
    missing = [c for c in train.columns if c not in syn.columns]
    if missing:
        raise InvalidDataError(f"The synthetic table lacks the columns {missing} of the original; audit tables with the same columns.")
    syn = syn[list(train.columns)]
    rng = np.random.default_rng(seed)
    if holdout is None:
        order = rng.permutation(len(train))
        cut = max(1, len(train) // 5)
        ho, train_part = train.iloc[order[:cut]], train.iloc[order[cut:]]
        notes.append("No holdout given: 20% of the original rows stand in for unseen rows (they were trained on, so "
                     "train/holdout comparisons understate the risk).")
    else:
        ho, train_part = read_table(holdout)[list(train.columns)], train
    schema = infer_schema(train)
    n = min(sample_rows, len(train_part), len(ho))
    tr = train_part.sample(n, random_state=seed) if len(train_part) > n else train_part
    ho_s = ho.sample(n, random_state=seed + 1) if len(ho) > n else ho
    sy = syn.sample(min(sample_rows, len(syn)), random_state=seed + 2) if len(syn) > sample_rows else syn
    feats = FeatureEncoder(schema).fit(train)
    x_tr, x_ho, x_sy = feats.transform(tr), feats.transform(ho_s), feats.transform(sy)

    copy_rate = exact_copy_rate(train, syn, list(train.columns))
    nn_tr = NearestNeighbors(n_neighbors=2).fit(x_tr)
    d = nn_tr.kneighbors(x_sy)[0]
    nndr = np.where(d[:, 1] > 0, d[:, 0] / np.maximum(d[:, 1], 1e-12), 0.0)
    d_sy_ho = NearestNeighbors(n_neighbors=1).fit(x_ho).kneighbors(x_sy)[0][:, 0]
    share = float((d[:, 0] < d_sy_ho).mean() + 0.5 * (d[:, 0] == d_sy_ho).mean())

    labels = np.r_[np.ones(len(x_tr)), np.zeros(len(x_ho))]
    nn_sy = NearestNeighbors(n_neighbors=1).fit(x_sy)
    dist_scores = -np.r_[nn_sy.kneighbors(x_tr)[0][:, 0], nn_sy.kneighbors(x_ho)[0][:, 0]]
    attacks = {"distance": _attack(labels, dist_scores)}
    # Density ratio: synthetic density over reference density (half the holdout as reference).
    half = len(x_ho) // 2
    if half >= 2:
        ref, non = x_ho[:half], x_ho[half:]
        mem = x_tr[: len(non)]
        pts = np.vstack([mem, non])
        score = np.log(NearestNeighbors(n_neighbors=1).fit(ref).kneighbors(pts)[0][:, 0] + 1e-9) - np.log(
            nn_sy.kneighbors(pts)[0][:, 0] + 1e-9
        )
        attacks["density_ratio"] = _attack(np.r_[np.ones(len(mem)), np.zeros(len(non))], score)
    if shadow is not None and len(ho) >= 20:
        # The attacker's reference rows: the holdout, split into shadow members and non-members.
        ref_rows = ho.sample(frac=1.0, random_state=seed + 3)
        k = len(ref_rows) // 2
        s_in, s_out = ref_rows.iloc[:k], ref_rows.iloc[k:]
        s_syn = feats.transform(shadow(s_in.reset_index(drop=True), seed))
        xf = np.vstack([_nn_features(feats.transform(s_in), s_syn), _nn_features(feats.transform(s_out), s_syn)])
        clf = LogisticRegression(max_iter=1000).fit(xf, np.r_[np.ones(len(s_in)), np.zeros(len(s_out))])
        target = np.vstack([_nn_features(x_tr, x_sy), _nn_features(x_ho, x_sy)])
        attacks["shadow_model"] = _attack(labels, clf.decision_function(target))
        notes.append("Shadow-model attack: a Gaussian-copula shadow synthesizer fitted on half the holdout; features are the "
                     "log distances to the 3 nearest synthetic rows; logistic regression.")
    inference = {}
    if attribute_attacks > 0 and len(ho) >= 2:
        inference = attribute_inference(train_part, ho, sy, schema, secrets=attribute_secrets, n_attacks=attribute_attacks, seed=seed)
        notes.append(f"Attribute inference: {min(attribute_attacks, len(train_part), len(ho))} training and as many holdout targets per "
                     f"secret column; nearest synthetic row on all other columns.")
    singled = {}
    if singling_out_attacks > 0 and len(ho) >= 2:
        singled = singling_out(tr, ho_s, sy, schema, n_attacks=singling_out_attacks, seed=seed)
        if singled:
            notes.append(f"Singling out: {singled['queries']} predicates of {singled['columns_per_predicate']} columns, each picking "
                         f"out one synthetic row, tried on {singled['rows_per_side']} training and as many holdout rows.")
    return PrivacyReport(
        exact_copy_rate=copy_rate,
        dcr_share=share,
        membership_inference_auc=attacks["distance"]["auc"],
        nndr_median=float(np.median(nndr)),
        attacks=attacks,
        distances={"dcr_synthetic_to_train_median": float(np.median(d[:, 0])), "dcr_synthetic_to_holdout_median": float(np.median(d_sy_ho)),
                   "sample_rows": {"train": len(tr), "holdout": len(ho_s), "synthetic": len(sy)}},
        guarantee=dict(guarantee) if guarantee else None,
        notes=notes,
        attribute_inference=inference,
        singling_out=singled,
    )
