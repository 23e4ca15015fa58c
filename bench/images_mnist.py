"""Conditional DCGAN and DDPM on MNIST for a fixed training-time budget on this machine.

Prints, for each model: training images/s, sampling images/s (DDPM with
1000 DDPM steps and with 50 DDIM steps), domain-feature FID and Inception FID
of 2,000 samples against 2,000 real training images with the real
train-vs-test floor beside them, KID, precision/recall and conditional
accuracy (a classifier trained on real digits recognising the requested class).

    python bench/images_mnist.py                       # 15 + 15 minutes of training
    python bench/images_mnist.py --dcgan-minutes 5 --ddpm-minutes 0

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


def evaluate(result, real, real_labels, test, test_labels, num: int, inception: bool):
    from engine.evaluation import evaluate_images

    report = evaluate_images(
        real[:num], result.images, real_labels=real_labels[:num], synthetic_labels=result.labels,
        holdout=test[:num], holdout_labels=test_labels[:num], inception=inception, seed=0,
    )
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dcgan-minutes", type=float, default=15)
    p.add_argument("--ddpm-minutes", type=float, default=15)
    p.add_argument("--samples", type=int, default=2000, help="generated (and real) images per FID")
    p.add_argument("--ddpm-1000-samples", type=int, default=8, help="images timed with 1000 DDPM steps")
    p.add_argument("--no-inception", action="store_true", help="skip Inception FID (slow on a CPU)")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args()

    import ray

    from engine.image_synthesizer import DCGAN, DDPM

    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    with np.load(MNIST) as z:
        x, y = z["x_train"], z["y_train"].astype(np.int64)
        xt, yt = z["x_test"], z["y_test"].astype(np.int64)
    real = x[:, :, :, None]
    test = xt[:, :, :, None]
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(x))[: args.samples]
    pick_t = rng.permutation(len(xt))[: args.samples]
    wanted = np.arange(args.samples) % 10  # a balanced request: 200 of each digit for 2,000
    storage = tempfile.mkdtemp(prefix="bench-images-")
    figures: dict[str, dict] = {}

    if args.dcgan_minutes > 0:
        gan, fig = train_for(lambda **kw: DCGAN(latent_dim=100, show_progress=True, **kw), x, y,
                             args.dcgan_minutes, 64, storage, "dcgan")
        result, fig["sample_images_per_s"] = sample_timed(gan, wanted, seed=1)
        report = evaluate(result, real[pick], y[pick], test[pick_t], yt[pick_t], args.samples, not args.no_inception)
        fig.update(report.to_dict())
        figures["dcgan"] = fig
        report.save(Path(storage) / "report_dcgan")
        print("conditional DCGAN:", json.dumps(fig, indent=1, default=str), flush=True)

    if args.ddpm_minutes > 0:
        ddpm, fig = train_for(lambda **kw: DDPM(show_progress=True, **kw), x, y, args.ddpm_minutes, 64, storage, "ddpm")
        small = wanted[: args.ddpm_1000_samples]
        _, fig["sample_images_per_s_ddpm_1000"] = sample_timed(ddpm, small, seed=2, sampler="ddpm", steps=1000)
        result, fig["sample_images_per_s_ddim_50"] = sample_timed(ddpm, wanted, seed=1, sampler="ddim", steps=50)
        report = evaluate(result, real[pick], y[pick], test[pick_t], yt[pick_t], args.samples, not args.no_inception)
        fig.update(report.to_dict())
        figures["ddpm"] = fig
        report.save(Path(storage) / "report_ddpm")
        print("DDPM (DDIM 50 steps):", json.dumps(fig, indent=1, default=str), flush=True)

    print(f"reports (HTML with sample grids) under {storage}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
