"""Benchmark of the time-series models (not a test): ``python bench/timeseries.py [--quick] [--data stocks energy]``.

The TimeGAN paper's protocol on its Stocks and Energy sets (``shared/data/timeseries``):
the series cut into 24-step windows with stride 1, min-max scaled to [0, 1] (the
metrics are computed on that scale), then

- the discriminative score (post-hoc GRU classifier, ``|accuracy - 0.5|``) and the
  predictive score (a one-step GRU trained on synthetic windows, MAE on real ones) of
  ``diffusion_ts`` and ``timegan``, beside the published numbers;
- the same scores of real data against real data (a held-out half for the
  discriminative floor; train-on-real for the predictive one), measured in the same run;
- sampling speed (sequences/s) and the training speed of 1 vs 2 Ray workers.

``--quick`` trains a few epochs and trains the post-hoc GRUs for fewer steps: the
figures show the pipeline works and how far a short run gets, not the models' best.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

warnings.filterwarnings("ignore")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "timeseries"
PUBLISHED = {  # (discriminative, predictive) from Yoon et al. 2019 and Yuan & Qiao 2024
    "stocks": {"TimeGAN": (0.102, 0.038), "Diffusion-TS": (0.067, 0.036), "real": (None, 0.036)},
    "energy": {"TimeGAN": (0.236, 0.273), "Diffusion-TS": (0.122, 0.250), "real": (None, 0.250)},
}
FILES = {"stocks": "stock_data.csv", "energy": "energy_data.csv"}


def windows01(frame: pd.DataFrame, length: int = 24) -> np.ndarray:
    """Every 24-step window (stride 1) of the series, min-max scaled to [0, 1] over the whole series."""
    x = frame.to_numpy(np.float64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.stack([x[i : i + length] for i in range(len(x) - length + 1)])


def scores(real: np.ndarray, synthetic: np.ndarray, steps_disc: int, steps_pred: int, seed: int = 0) -> tuple[float, float]:
    from engine.timeseries.metrics.scores import discriminative_score, predictive_score

    mr, ms = np.ones(real.shape[:2]), np.ones(synthetic.shape[:2])
    disc = discriminative_score(real, mr, synthetic, ms, steps=steps_disc, seed=seed)["discriminative_score"]
    pred = predictive_score(synthetic, ms, real, mr, steps=steps_pred, seed=seed)
    return disc, pred


def run(name: str, quick: bool) -> None:
    from engine import TimeSeriesSynthesizer

    frame = pd.read_csv(DATA / FILES[name])
    if name == "stocks":
        frame = frame.iloc[::-1].reset_index(drop=True)  # oldest first, as the TimeGAN code reads it
    real = windows01(frame)
    n_eval = min(len(real), 500 if quick else len(real))
    rng = np.random.default_rng(0)
    real_eval = real[rng.permutation(len(real))[:n_eval]]
    steps_disc, steps_pred = (200, 300) if quick else (2000, 5000)
    settings = {
        "diffusion_ts": dict(epochs=6 if quick else 400, batch_size=64, model_config={}),
        "timegan": dict(epochs=3 if quick else 100, batch_size=128,
                        model_config={"embedding_epochs": 3 if quick else 50, "supervised_epochs": 2 if quick else 50}),
    }
    print(f"\n== {name}: {len(real)} windows of 24 x {real.shape[2]} ({'quick' if quick else 'full'}; "
          f"scores on {n_eval} windows, post-hoc GRUs {steps_disc}/{steps_pred} steps)")
    rows = []
    half = len(real_eval) // 2
    t0 = time.perf_counter()
    floor_disc = scores(real_eval[:half], real_eval[half:], steps_disc, steps_pred)[0]
    real_pred = scores(real_eval, real_eval, 10, steps_pred)[1]
    rows.append(("real vs real (this run)", floor_disc, real_pred, None, None, time.perf_counter() - t0))
    for model, cfg in settings.items():
        synth = TimeSeriesSynthesizer(model, sequence_length=24, stride=1, model_config=cfg["model_config"], show_progress=False)
        t0 = time.perf_counter()
        synth.fit(frame, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=0)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = synth.sample(n_eval, seed=1)
        sample_s = time.perf_counter() - t0
        syn = windows01_like(out, frame)
        disc, pred = scores(real_eval, syn, steps_disc, steps_pred)
        rows.append((model, disc, pred, fit_s, n_eval / sample_s, None))
        print(f"  {model}: fitted in {fit_s:.0f} s, disc {disc:.3f}, pred {pred:.3f}", flush=True)
    print(f"{'model':26s} {'disc':>7s} {'pred':>7s} {'fit s':>8s} {'seq/s':>8s}")
    for label, disc, pred, fit_s, speed, extra in rows:
        fit_txt = f"{fit_s:8.0f}" if fit_s is not None else f"{'-':>8s}"
        speed_txt = f"{speed:8.0f}" if speed is not None else f"{'-':>8s}"
        print(f"{label:26s} {disc:7.3f} {pred:7.3f} {fit_txt} {speed_txt}")
    for label, (disc, pred) in PUBLISHED[name].items():
        print(f"{'published ' + label:26s} {'-' if disc is None else f'{disc:.3f}':>7s} {pred:7.3f}")
    best = min(r[1] for r in rows[1:])
    print(f"best discriminative / Diffusion-TS published: {best / PUBLISHED[name]['Diffusion-TS'][0]:.2f}x; "
          f"timegan / TimeGAN published: {rows[2][1] / PUBLISHED[name]['TimeGAN'][0]:.2f}x; "
          f"diffusion_ts predictive / real (this run): {rows[1][2] / real_pred:.2f}x")


def windows01_like(out: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """Synthetic windows (long format with sequence_id) on the [0, 1] scale of the real series."""
    cols = list(frame.columns)
    x = out[cols].to_numpy(np.float64).reshape(out["sequence_id"].nunique(), 24, len(cols))
    lo, hi = frame.to_numpy(np.float64).min(axis=0), frame.to_numpy(np.float64).max(axis=0)
    return (x - lo) / np.where(hi > lo, hi - lo, 1.0)


def workers(quick: bool) -> None:
    """Training speed of diffusion_ts on Stocks with 1 and 2 Ray workers (same epochs; the ratio is the speed-up)."""
    from engine import TimeSeriesSynthesizer

    frame = pd.read_csv(DATA / FILES["stocks"])
    epochs = 1 if quick else 20
    times = {}
    for n in (1, 2):
        synth = TimeSeriesSynthesizer("diffusion_ts", sequence_length=24, num_workers=n, show_progress=False)
        t0 = time.perf_counter()
        synth.fit(frame, epochs=epochs, batch_size=64, seed=0)
        times[n] = time.perf_counter() - t0
        epoch_s = [row["seconds"] for row in synth.history_ if "seconds" in row]
        print(f"{n} worker(s): {times[n]:.0f} s for {epochs} epochs (median epoch {np.median(epoch_s):.1f} s)")
    print(f"2 vs 1 workers, wall time ratio: {times[2] / times[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs and short post-hoc training")
    parser.add_argument("--data", nargs="+", default=None, choices=list(FILES), help="data sets (default: both; --quick: stocks)")
    parser.add_argument("--no-workers", action="store_true", help="skip the 1 vs 2 workers timing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    for name in args.data or (["stocks"] if args.quick else list(FILES)):
        run(name, args.quick)
    if not args.no_workers:
        workers(args.quick)


if __name__ == "__main__":
    main()
