"""DP-DCGAN on MNIST at epsilon = 10 beside the non-private DCGAN of the same size and epochs.

For each model it prints: fit time, the epsilon actually spent (and the noise multiplier,
clipping norm and DP-SGD steps), the conditional accuracy of generated digits (share that a
CNN trained on real MNIST digits, ``engine.images.metrics``' domain classifier, assigns to the
class they were generated for, beside its accuracy on held-out test digits), the domain-CNN
FID against real training digits (beside the real-vs-test floor) and the ratio of each
figure to the non-private DCGAN's in the same run.

The digit classes 0-9 are public knowledge (``public_categories``); the class frequencies the
DP model draws labels from are Laplace-noised counts (5% of epsilon), the rest trains the
discriminator with DP-SGD. Both models have the same networks (widths, latent size) and
train for the same number of epochs at the same (expected) batch size; the DCGAN keeps its
BatchNorm discriminator, the DP model's is GroupNorm (Opacus needs per-image gradients).

    python bench/privacy_images.py --quick     # 6,000 training digits, 3 epochs, widths 32
    python bench/privacy_images.py             # 60,000 digits, 10 epochs, widths 64

Timings are wall-clock on whatever the machine is doing (a shared 2-core box inflates them).
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "mnist.npz"
DIGITS = [str(d) for d in range(10)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epsilon", type=float, default=10.0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--train-images", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64, help="the DCGAN's batch and DP-SGD's expected batch")
    ap.add_argument("--samples", type=int, default=None, help="generated (and real) digits compared")
    args = ap.parse_args()
    if not MNIST.exists():
        raise SystemExit(f"MNIST not found at {MNIST} (see ../shared/data/README.md)")

    import ray
    import torch

    from engine.images.metrics import ImageEvaluator
    from engine.images.synthesizer import ImageSynthesizer
    from engine.privacy.synthesizer import DPSynthesizer

    torch.set_num_threads(2)
    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    n = args.train_images or (6000 if args.quick else 60000)
    epochs = args.epochs or (3 if args.quick else 10)
    width = 32 if args.quick else 64
    samples = args.samples or (1000 if args.quick else 2000)
    with np.load(MNIST) as z:
        x, y = z["x_train"][:n], z["y_train"][:n].astype(np.int64)
        xt, yt = z["x_test"], z["y_test"].astype(np.int64)
    net = {"latent_dim": 64, "generator_width": width, "discriminator_width": width}

    t0 = time.perf_counter()
    evaluator = ImageEvaluator(max_images=samples, inception=False).fit(x, y, holdout=xt[:samples], holdout_labels=yt[:samples])
    print(f"judge (CNN on real digits) fitted in {time.perf_counter() - t0:.0f} s; test accuracy {evaluator.judge_accuracy_:.3f}", flush=True)
    wanted = np.arange(samples) % 10  # a balanced request

    def measure(name: str, synth, fit_s: float, extra: dict) -> dict:
        report = evaluator.evaluate(synth.sample(samples, labels=list(wanted), seed=1))
        row = {
            "model": name, "fit_s": round(fit_s, 1), "conditional_accuracy": round(report.conditional_accuracy, 3),
            "judge_accuracy": round(report.judge_accuracy, 3), "domain_fid": round(report.domain.fid, 2),
            "domain_fid_floor": round(report.domain.fid_floor, 2), **extra,
        }
        print(json.dumps(row), flush=True)
        return row

    rows = []
    t0 = time.perf_counter()
    dp = DPSynthesizer(
        epsilon=args.epsilon, delta=1e-5, model="dp_dcgan", expected_batch_size=args.batch_size,
        public_categories={"label": DIGITS}, model_config=net,
    )
    dp.fit(x, labels=y, epochs=epochs, seed=0)
    p = dp.privacy_
    rows.append(measure(f"dp_dcgan eps={args.epsilon:g}", dp.synthesizer_, time.perf_counter() - t0, {
        "epsilon_spent": round(dp.epsilon_spent_, 3), "delta": p["delta"], "noise_multiplier": round(p["noise_multiplier"], 3),
        "max_grad_norm": p["max_grad_norm"], "steps": p["steps"], "sample_rate": round(p["sample_rate"], 4),
    }))
    t0 = time.perf_counter()
    gan = ImageSynthesizer("dcgan", model_config=net, show_progress=False)
    gan.fit(x, labels=y, epochs=epochs, batch_size=args.batch_size, seed=0)
    rows.append(measure("dcgan (no DP)", gan, time.perf_counter() - t0, {"steps": epochs * (n // args.batch_size)}))

    base = rows[-1]
    print(f"\n{n} training digits, {epochs} epochs, batch {args.batch_size}, widths {width}, {samples} digits compared")
    print("model              eps_spent  fit_s  cond_acc  judge  dom_FID (floor)  cond_acc/DCGAN  FID/DCGAN")
    for r in rows:
        print(f"{r['model']:<18} {str(r.get('epsilon_spent', '-')):>9} {r['fit_s']:>6} {r['conditional_accuracy']:>9} {r['judge_accuracy']:>6} "
              f"{r['domain_fid']:>8} ({r['domain_fid_floor']})  {r['conditional_accuracy'] / max(base['conditional_accuracy'], 1e-9):>13.3f} "
              f"{r['domain_fid'] / max(base['domain_fid'], 1e-9):>10.3f}")


if __name__ == "__main__":
    main()
