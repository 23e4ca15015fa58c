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

``--images``: the same question for images. 100 MNIST training digits per class
(1,000 in all) train a small CNN classifier (the image evaluator's domain CNN,
a fixed number of optimisation steps whatever the training-set size), scored
on real test digits; then a class-conditional DCGAN trained on those 1,000
digits adds synthetic digits with ``synth.augment`` (x2, x4), and the CNN is
trained again. Also printed: the CNN trained on synthetic digits only, and the
per-class fidelity of the synthetic digits (``synth.class_fidelity``).

    python bench/augmentation.py --images --quick    # one seed, x2, a narrow DCGAN for 20 epochs, 2,000 test digits
    python bench/augmentation.py --images --gan-epochs 100
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
MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "images" / "mnist.npz"


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
    parser.add_argument("--images", action="store_true", help="MNIST: 100 digits per class, a conditional DCGAN")
    parser.add_argument("--per-class", type=int, default=100, help="--images: real training digits per class")
    parser.add_argument("--gan-epochs", type=int, default=None, help="--images: DCGAN epochs (default 60, --quick 20)")
    parser.add_argument("--gan-width", type=int, default=None, help="--images: DCGAN generator/discriminator width (default 64, --quick 16)")
    parser.add_argument("--cnn-steps", type=int, default=None, help="--images: classifier updates (default 400, --quick 200)")
    args = parser.parse_args()
    if args.images:
        return images_main(args)

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


def cnn_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, steps: int, seed: int) -> float:
    """Test accuracy of the domain CNN trained for ``steps`` updates (batches of 128) on the training digits."""
    from engine.images.metrics import DomainClassifier

    epochs = max(1, -(-steps // -(-len(x_train) // 128)))
    clf = DomainClassifier(epochs=epochs, batch_size=128, seed=seed).fit(x_train, y_train)
    return float(np.mean(clf.predict(x_test) == y_test))


def images_main(args: argparse.Namespace) -> None:
    import torch

    from engine.images.io import ImageSet
    from engine.images.synthesizer import ImageSynthesizer

    if not MNIST.exists():
        raise SystemExit(f"MNIST is not at {MNIST} (see ../shared/data/README.md)")
    with np.load(MNIST) as z:
        x_all, y_all, x_test, y_test = z["x_train"], z["y_train"].astype(np.int64), z["x_test"], z["y_test"].astype(np.int64)
    seeds = [0] if args.quick else list(range(args.seeds))
    factors = [2.0] if args.quick else [2.0, 4.0]
    gan_epochs = args.gan_epochs or (20 if args.quick else 60)
    width = args.gan_width or (16 if args.quick else 64)
    steps = args.cnn_steps or (200 if args.quick else 400)
    n_test = 2000 if args.quick else len(x_test)
    x_test, y_test = x_test[:n_test, ..., None], y_test[:n_test]
    names = [str(k) for k in range(10)]
    results: dict[str, list[float]] = {}
    fidelity: list[dict[str, float]] = []
    started = time.perf_counter()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        pick = np.concatenate([rng.choice(np.flatnonzero(y_all == k), args.per_class, replace=False) for k in range(10)])
        real = ImageSet(x_all[pick][..., None], y_all[pick], names)
        results.setdefault("real only (baseline)", []).append(cnn_accuracy(real.images, real.labels, x_test, y_test, steps, seed))
        t0 = time.perf_counter()
        synth = ImageSynthesizer("dcgan", model_config={"generator_width": width, "discriminator_width": width},
                                 show_progress=False).fit(real.images, real.labels, epochs=gan_epochs, seed=seed)
        print(f"seed {seed}: DCGAN {gan_epochs} epochs on {len(real)} digits in {time.perf_counter() - t0:.0f} s", flush=True)
        for factor in factors:
            mixed = synth.augment(real, factor, target="label", preserve_distribution=True, seed=seed)
            codes = np.asarray([int(mixed.class_names[k]) for k in mixed.labels])
            results.setdefault(f"real + synthetic x{factor:g}", []).append(cnn_accuracy(mixed.images, codes, x_test, y_test, steps, seed))
        fake = synth.rebalance("label", len(real), seed=seed + 1)
        fake_codes = np.asarray([int(fake.class_names[k]) for k in fake.labels])
        results.setdefault("synthetic only (same count)", []).append(cnn_accuracy(fake.images, fake_codes, x_test, y_test, steps, seed))
        fidelity.append(synth.class_fidelity(real, fake, "label", seed=seed))
    base = float(np.mean(results["real only (baseline)"]))
    print(f"{args.per_class} real MNIST digits per class, conditional DCGAN (width {width}, {gan_epochs} epochs), CNN {steps} steps, "
          f"seeds {seeds}, {n_test} real test digits ({time.perf_counter() - started:.0f} s)")
    print(f"{'training set':32s} {'test accuracy':>22s}")
    for name, runs in results.items():
        mean = float(np.mean(runs))
        print(f"{name:32s} {f'{mean:.3f} ({mean / base:.2f}x)':>22s}")
    per_class = {k: float(np.mean([f[k] for f in fidelity])) for k in fidelity[0]}
    print("per-class fidelity of the synthetic digits (share a CNN trained on the real ones assigns to their class): "
          + ", ".join(f"{k}: {v:.2f}" for k, v in per_class.items()))


if __name__ == "__main__":
    main()
