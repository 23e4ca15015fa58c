"""Differentially private synthesis on UCI Adult: DP-CTGAN, DP-TVAE, AIM and MST at several epsilons vs CTGAN.

For each model and epsilon (delta = 1e-5) it prints: fit time, SDMetrics-style fidelity
(our quality score, column shapes and pair trends), train-on-synthetic / test-on-real ROC AUC
of a logistic regression predicting ``income`` against train-on-real (TSTR / TRTR), the
membership-inference AUCs of the audit (distance and shadow-model attacks, against unseen
test rows), the largest attribute-inference risk over the audit's secret columns and the
epsilon actually spent.

The domain is public: categories and numeric ranges come from the Adult codebook (taken
here from the full data set's category lists and ranges), as DP benchmarks usually assume;
``--private-domain`` spends part of the budget to learn it instead.

    python bench/privacy.py --quick      # 4,000 training rows, every model at eps 1, 3, 10
    python bench/privacy.py --models aim,mst   # only the marginal models
    python bench/privacy.py              # 20,000 training rows, every model at eps 1, 3, 10

Timings are wall-clock on whatever the machine is doing (a shared 2-core box inflates them).
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
TARGET = "income"


def measure(name: str, eps: float | None, train: pd.DataFrame, test: pd.DataFrame, synthetic: pd.DataFrame, fit_s: float, spent: float | None) -> dict:
    from engine.privacy.audit import verify_privacy
    from engine.privacy.pii import ml_efficacy
    from engine.tabular.metrics.fidelity import quality_scores
    from engine.tabular.schema.infer import infer_schema

    q = quality_scores(train, synthetic, infer_schema(train))
    eff = ml_efficacy(train, synthetic, test, TARGET)
    audit = verify_privacy(train, synthetic, holdout=test, seed=0, sample_rows=2000)
    row = {
        "model": name, "epsilon": eps, "epsilon_spent": spent, "fit_s": round(fit_s, 1),
        "quality": round(q["score"], 3), "shapes": round(q["column_shapes"], 3), "trends": round(q["column_pair_trends"], 3),
        "tstr_auroc": round(eff["auc_synthetic"], 3), "trtr_auroc": round(eff["auc_real"], 3), "tstr_over_trtr": round(eff["score"], 3),
        "mia_auc_distance": round(audit.attacks["distance"]["auc"], 3),
        "mia_auc_shadow": round(audit.attacks.get("shadow_model", {}).get("auc", float("nan")), 3),
        "exact_copy_rate": round(audit.exact_copy_rate, 4), "dcr_share": round(audit.dcr_share, 3),
        "attribute_inference_risk": round(audit.attribute_inference_risk, 3) if audit.attribute_inference_risk is not None else None,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--private-domain", action="store_true")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--models", default="aim,mst,dp_ctgan,dp_tvae,ctgan", help="comma-separated subset to run")
    args = ap.parse_args()

    import torch

    from engine.data import load_adult
    from engine.privacy.synthesizer import DPSynthesizer
    from engine.tabular.synthesizer import TabularSynthesizer

    torch.set_num_threads(2)
    full = load_adult()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(full))
    n_train, n_test = (4000, 2000) if args.quick else (20000, 8000)
    train = full.iloc[order[:n_train]].reset_index(drop=True)
    test = full.iloc[order[n_train : n_train + n_test]].reset_index(drop=True)
    domain = {}
    if not args.private_domain:
        domain = {
            "public_categories": {c: sorted(full[c].dropna().unique().tolist()) for c in full.columns if full[c].dtype == object},
            "public_bounds": {c: (float(full[c].min()), float(full[c].max())) for c in full.columns if full[c].dtype != object},
            "nullable_columns": [c for c in full.columns if full[c].isna().any()],
        }
    epochs = args.epochs or (10 if args.quick else 30)
    small = {"dp_ctgan": {"embedding_dim": 64, "generator_dims": (128, 128), "discriminator_dims": (128, 128)},
             "dp_tvae": {"embedding_dim": 64, "compress_dims": (128,), "decompress_dims": (128,)}}
    rows = []
    epsilons = (1.0, 3.0, 10.0)
    plan = [(m, e) for m in ("aim", "mst") for e in epsilons]
    plan += [(m, e) for m in ("dp_ctgan", "dp_tvae") for e in epsilons]
    chosen = set(args.models.split(","))
    plan = [(m, e) for m, e in plan if m in chosen]
    for model, eps in plan:
        dp = DPSynthesizer(epsilon=eps, delta=1e-5, model=model, model_config=small.get(model), **domain)
        t0 = time.perf_counter()
        try:
            dp.fit(train, epochs=epochs, seed=0)
        except Exception as exc:  # report and keep going: one failing model must not hide the others' numbers
            print(json.dumps({"model": model, "epsilon": eps, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
            continue
        fit_s = time.perf_counter() - t0
        rows.append(measure(model, eps, train, test, dp.sample(len(train), seed=1), fit_s, dp.epsilon_spent_))
    if "ctgan" in chosen:
        t0 = time.perf_counter()
        ctgan = TabularSynthesizer("ctgan").fit(train, epochs=epochs * 3, seed=0, show_progress=False)
        rows.append(measure("ctgan (no DP)", None, train, test, ctgan.sample(len(train), seed=1), time.perf_counter() - t0, None))
    base = rows[-1]  # the quality ratio is against CTGAN when it ran, else against the last row
    print("\nmodel            eps   spent  fit_s  quality  TSTR   TRTR   ratio  MIA(dist) MIA(shadow)  vs CTGAN quality")
    for r in rows:
        print(f"{r['model']:<16} {str(r['epsilon']):>5} {str(round(r['epsilon_spent'], 3) if r['epsilon_spent'] is not None else '-'):>6} "
              f"{r['fit_s']:>6} {r['quality']:>7} {r['tstr_auroc']:>6} {r['trtr_auroc']:>6} {r['tstr_over_trtr']:>6} "
              f"{r['mia_auc_distance']:>9} {r['mia_auc_shadow']:>10}  {r['quality'] / base['quality']:.3f}")


if __name__ == "__main__":
    main()
