"""Conditional DCGAN and DDPM on MNIST for a fixed training-time budget on this machine.

Prints, for each model: epochs done in the budget, training images/s,
sampling images/s (DDPM with 1000 DDPM steps and with 50 DDIM steps), and the
image evaluation layer's scores of 2,000 generated digits (200 per class)
against 2,000 training digits: FID, KID, precision and recall in InceptionV3
features and in the domain CNN's features, each next to the real-vs-held-out
floor (2,000 test digits), and the conditional accuracy (share of generated
digits a CNN trained on real digits assigns to the requested class, next to
its accuracy on the 10,000 test digits). Reports (JSON, HTML, grids) are saved
per model under ``--out``.

    python bench/images_mnist.py --out runs/mnist                       # 15 + 15 minutes of training, then evaluation
    python bench/images_mnist.py --out runs/mnist --ddpm-train-images 5000   # the DDPM on a subset: more epochs in the budget
    python bench/images_mnist.py --out runs/mnist --evaluate-only       # evaluate the models saved there again
    python bench/images_mnist.py --out runs/mnist --dcgan-minutes 5 --ddpm-minutes 0 --no-inception

Inception features cost about a tenth of a second per image on a CPU core, so
the evaluation of both models (8,000 images) takes ten to fifteen minutes here.

Training runs through the engine's Ray Train loop. The budget is met by
timing one epoch, then resuming the same run (same name, same checkpoint
folder) for as many more epochs as fit the rest of the budget.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "mnist.npz"


def train_for(make, x, y, minutes: float, batch_size: int, storage: str, name: str):
    """Train with a wall-clock budget: one timed epoch, then resume for the epochs that fit."""
    started = time.perf_counter()
    model = make(storage_path=storage, run_name=name, checkpoint_every=1)
    model.train(x, labels=y, epochs=1, batch_size=batch_size)
    first = time.perf_counter() - started
    epoch_seconds = model.history_[-1]["seconds"]
    more = int((minutes * 60 - first) // epoch_seconds)
    if more > 0:
        model = make(storage_path=storage, run_name=name, checkpoint_every=1)
        model.train(x, labels=y, epochs=1 + more, batch_size=batch_size)
    wall = time.perf_counter() - started
    epochs = len(model.history_)
    train_seconds = sum(row["seconds"] for row in model.history_)
    return model, {
        "epochs": epochs,
        "wall_seconds": round(wall, 1),
        "train_images_per_s": round(epochs * len(x) / train_seconds, 1),
    }


def sample_timed(model, labels, seed: int, **options):
    started = time.perf_counter()
    result = model.sample(len(labels), labels=list(labels), seed=seed, **options)
    return result, len(labels) / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dcgan-minutes", type=float, default=15)
    p.add_argument("--ddpm-minutes", type=float, default=15)
    p.add_argument("--samples", type=int, default=2000, help="generated (and real) images compared")
    p.add_argument("--ddpm-1000-samples", type=int, default=8, help="images timed with 1000 DDPM steps")
    p.add_argument("--out", default=None, help="folder for the trained models, sample grids and figures.json (default: a temp folder)")
    p.add_argument("--train-only", action="store_true", help="train and save the models; evaluate later with --evaluate-only")
    p.add_argument("--evaluate-only", action="store_true", help="evaluate the models saved in --out by an earlier run")
    p.add_argument("--train-images", type=int, default=60000, help="train the DCGAN on the first N training digits")
    p.add_argument("--ddpm-train-images", type=int, default=60000,
                   help="train the DDPM on the first N training digits (an epoch of 60,000 takes long on a CPU)")
    p.add_argument("--no-inception", action="store_true", help="skip the Inception scores (the slow part on a CPU)")
    args = p.parse_args()

    import ray

    from engine.images.synthesizer import DCGAN, DDPM

    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    with np.load(MNIST) as z:
        x, y = z["x_train"], z["y_train"].astype(np.int64)
        xt, yt = z["x_test"], z["y_test"].astype(np.int64)
    wanted = np.arange(args.samples) % 10  # a balanced request: 200 of each digit for 2,000
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-images-"))
    out.mkdir(parents=True, exist_ok=True)
    figures_path = out / "figures.json"
    figures: dict[str, dict] = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    makers = {
        "dcgan": (args.dcgan_minutes, args.train_images, lambda **kw: DCGAN(latent_dim=100, show_progress=True, **kw)),
        "ddpm": (args.ddpm_minutes, args.ddpm_train_images, lambda **kw: DDPM(show_progress=True, **kw)),
    }
    for name, (minutes, n, make) in makers.items():
        if minutes <= 0 or args.evaluate_only:
            continue
        model, fig = train_for(make, x[:n], y[:n], minutes, 64, str(out / "checkpoints"), name)
        fig["train_images"] = min(n, len(x))
        model.save(out / name)
        figures[name] = {**figures.get(name, {}), "training": fig}
        print(f"{name} training:", json.dumps(fig), flush=True)
        figures_path.write_text(json.dumps(figures, indent=1, default=str))
    if args.train_only:
        return

    from engine.images.metrics import ImageEvaluator
    from engine.images.synthesizer import ImageSynthesizer

    started = time.perf_counter()
    evaluator = ImageEvaluator(max_images=args.samples, inception=not args.no_inception).fit(
        x, y, holdout=xt, holdout_labels=yt
    )
    print(f"evaluator fitted in {time.perf_counter() - started:.0f} s; the domain CNN scores "
          f"{evaluator.judge_accuracy_:.1%} on the test digits", flush=True)
    for name in makers:
        if not (out / name).exists():
            continue
        model = ImageSynthesizer.load(out / name)
        fig = {}
        if name == "ddpm":
            small = wanted[: args.ddpm_1000_samples]
            _, fig["sample_images_per_s_ddpm_1000_steps"] = sample_timed(model, small, seed=2, sampler="ddpm", steps=1000)
            result, fig["sample_images_per_s_ddim_50_steps"] = sample_timed(model, wanted, seed=1, sampler="ddim", steps=50)
        else:
            result, fig["sample_images_per_s"] = sample_timed(model, wanted, seed=1)
        report = evaluator.evaluate(result)
        report.save(out / f"report_{name}")
        fig = {k: round(v, 2) for k, v in fig.items()}
        figures[name] = {**figures.get(name, {}), "sampling": fig, "evaluation": report.to_dict()}
        print(f"{name} sampling:", json.dumps(fig), flush=True)
        print(report.summary(), flush=True)
        figures_path.write_text(json.dumps(figures, indent=1, default=str))
    print(f"figures in {figures_path}; reports and sample grids under {out}")


if __name__ == "__main__":
    main()
