"""Does augmentation help a classifier trained on little data? 500 real Adult rows, with and without synthetic rows.

For each seed: 500 real rows are drawn from UCI Adult as the training set and
5,000 other rows as the test set. A gradient-boosted classifier of ``income``
is trained on (a) the 500 real rows (the baseline), (b) the real rows plus
synthetic rows from ``synth.augment`` keeping the class proportions, and (c)
plus synthetic rows balancing the classes; it is scored on the real test rows
(ROC AUC, balanced accuracy, F1 of ``>50K``). Prints each setting's mean and
its ratio to the baseline measured in the same run.

    python bench/augmentation.py                # copula; factors 2 and 4; 3 seeds
    python bench/augmentation.py --quick        # one seed, factor 2
    python bench/augmentation.py --model ctgan --epochs 100
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
TARGET = "income"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tabular" / "adult.csv"


def score(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    features = [c for c in test.columns if c != TARGET]
    categorical = [c for c in features if test[c].dtype == object]
    both = pd.concat([train[features], test[features]])
    for c in categorical:
        both[c] = both[c].astype("category")
    x_train, x_test = both.iloc[: len(train)], both.iloc[len(train):]
    y_train, y_test = (train[TARGET].str.strip() == ">50K"), (test[TARGET].str.strip() == ">50K")
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, max_iter=200)
    model.fit(x_train, y_train)
    p = model.predict_proba(x_test)[:, 1]
    return {
        "roc_auc": roc_auc_score(y_test, p),
        "balanced_accuracy": balanced_accuracy_score(y_test, p > 0.5),
        "f1_>50K": f1_score(y_test, p > 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, factor 2 only")
    parser.add_argument("--model", default="gaussian_copula", help="synthesizer (default: gaussian_copula)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of ctgan/tvae")
    parser.add_argument("--real-rows", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    from engine import TabularSynthesizer

    adult = pd.read_csv(DATA)
    seeds = [0] if args.quick else list(range(args.seeds))
    factors = [2.0] if args.quick else [2.0, 4.0]
    results: dict[str, list[dict[str, float]]] = {}
    started = time.perf_counter()
    for seed in seeds:
        shuffled = adult.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        real, test = shuffled.iloc[: args.real_rows], shuffled.iloc[args.real_rows: args.real_rows + 5000]
        results.setdefault("real only (baseline)", []).append(score(real, test, seed))
        synth = TabularSynthesizer(args.model).fit(real, epochs=args.epochs, seed=seed, **({} if args.model == "gaussian_copula" else {"show_progress": False}))
        for factor in factors:
            for preserve in (True, False):
                mixed = synth.augment(real, augmentation_factor=factor, target=TARGET, preserve_distribution=preserve, seed=seed)
                name = f"x{factor:g} {'same proportions' if preserve else 'balanced classes'}"
                results.setdefault(name, []).append(score(mixed.drop(columns="source"), test, seed))
    base = {k: np.mean([r[k] for r in results["real only (baseline)"]]) for k in results["real only (baseline)"][0]}
    print(f"{args.real_rows} real Adult rows, {args.model}, seeds {seeds}, test 5000 real rows "
          f"({time.perf_counter() - started:.0f} s)")
    print(f"{'training set':32s} {'ROC AUC':>16s} {'balanced acc.':>16s} {'F1 >50K':>16s}")
    for name, runs in results.items():
        cells = []
        for metric in ("roc_auc", "balanced_accuracy", "f1_>50K"):
            mean = float(np.mean([r[metric] for r in runs]))
            cells.append(f"{mean:.3f} ({mean / base[metric]:.2f}x)")
        print(f"{name:32s} " + " ".join(f"{c:>16s}" for c in cells))


if __name__ == "__main__":
    main()
