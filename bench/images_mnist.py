"""Conditional DCGAN and DDPM on MNIST for a fixed training-time budget on this machine.

Prints, for each model: epochs done in the budget, training images/s,
sampling images/s (DDPM with 1000 DDPM steps and with 50 DDIM steps), and a
blunt diversity figure: the mean within-class pixel standard deviation of the
generated digits next to the same figure for real digits (a generator that
ignores its noise scores near 0). It saves a sample grid per model
(one row per class) as PNG next to the models.

FID, KID, precision/recall and conditional accuracy belong to the image
evaluation layer, which is not built yet; this script will report them once
``engine.evaluation`` has them.

    python bench/images_mnist.py --out runs/mnist                       # 15 + 15 minutes of training, then evaluation
    python bench/images_mnist.py --out runs/mnist --evaluate-only       # evaluate the models saved there again
    python bench/images_mnist.py --out runs/mnist --dcgan-minutes 5 --ddpm-minutes 0

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


def within_class_std(images: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of the per-pixel standard deviation across that class's images (0..255 scale)."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    return float(np.mean([flat[labels == k].std(axis=0).mean() for k in np.unique(labels)]))


def save_grid(images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 10) -> None:
    """One row per class, ``per_class`` images per row, as a grey PNG."""
    from PIL import Image

    rows = [images[labels == k][:per_class, :, :, 0] for k in np.unique(labels)]
    grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    Image.fromarray(grid).save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dcgan-minutes", type=float, default=15)
    p.add_argument("--ddpm-minutes", type=float, default=15)
    p.add_argument("--samples", type=int, default=2000, help="generated (and real) images compared")
    p.add_argument("--ddpm-1000-samples", type=int, default=8, help="images timed with 1000 DDPM steps")
    p.add_argument("--out", default=None, help="folder for the trained models, sample grids and figures.json (default: a temp folder)")
    p.add_argument("--train-only", action="store_true", help="train and save the models; evaluate later with --evaluate-only")
    p.add_argument("--evaluate-only", action="store_true", help="evaluate the models saved in --out by an earlier run")
    args = p.parse_args()

    import ray

    from engine.image_synthesizer import DCGAN, DDPM

    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    with np.load(MNIST) as z:
        x, y = z["x_train"], z["y_train"].astype(np.int64)
        xt, yt = z["x_test"], z["y_test"].astype(np.int64)
    test = xt[:, :, :, None]
    pick_t = np.random.default_rng(0).permutation(len(xt))[: args.samples]
    wanted = np.arange(args.samples) % 10  # a balanced request: 200 of each digit for 2,000
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-images-"))
    out.mkdir(parents=True, exist_ok=True)
    figures_path = out / "figures.json"
    figures: dict[str, dict] = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    makers = {
        "dcgan": (args.dcgan_minutes, lambda **kw: DCGAN(latent_dim=100, show_progress=True, **kw)),
        "ddpm": (args.ddpm_minutes, lambda **kw: DDPM(show_progress=True, **kw)),
    }
    for name, (minutes, make) in makers.items():
        if minutes <= 0 or args.evaluate_only:
            continue
        model, fig = train_for(make, x, y, minutes, 64, str(out / "checkpoints"), name)
        model.save(out / name)
        figures[name] = {**figures.get(name, {}), "training": fig}
        print(f"{name} training:", json.dumps(fig), flush=True)
        figures_path.write_text(json.dumps(figures, indent=1, default=str))
    if args.train_only:
        return

    from engine.image_synthesizer import ImageSynthesizer

    figures["real"] = {"within_class_pixel_std": round(within_class_std(test[pick_t], yt[pick_t]), 2)}
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
        fig["within_class_pixel_std"] = round(within_class_std(result.images, result.labels), 2)
        save_grid(result.images, result.labels, out / f"grid_{name}.png")
        figures[name] = {**figures.get(name, {}), "sampling": fig}
        print(f"{name}:", json.dumps(fig), f"(real digits: {figures['real']['within_class_pixel_std']})", flush=True)
        figures_path.write_text(json.dumps(figures, indent=1, default=str))
    print(f"figures in {figures_path}; sample grids under {out}")


if __name__ == "__main__":
    main()
