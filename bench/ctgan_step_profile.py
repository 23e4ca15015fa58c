"""Where one CTGAN training step spends its time, and what Ray adds per epoch.

1. In this process, on Adult encoded as the front door encodes it, with CTGAN's default
   configuration: the time of one ``train_step`` (median of N), of drawing its batch, and a
   torch.profiler table of the operators by self CPU time (the matrix products' share summed).
2. Through the one Ray Train loop (``TabularSynthesizer.fit``): the wall time of a 1-epoch and a
   ``1 + E``-epoch fit; ``(T(1 + E) - T(1)) / E`` is the cost of one more epoch in Ray, and its
   excess over the in-process epoch (steps x step time) is Ray's per-epoch overhead.

    python bench/ctgan_step_profile.py --quick     # 5,000 rows, 20 steps, Ray with E = 2
    python bench/ctgan_step_profile.py --no-ray    # the in-process part only

On a shared machine every time is inflated: compare shares and ratios, not seconds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402 - bench/machine.py, beside this script

MATMUL_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear")


def in_process(real, steps: int, batch_size: int) -> dict:
    from engine.tabular.models.ctgan import CTGAN, CTGANConfig
    from engine.tabular.schema.infer import infer_schema
    from engine.tabular.transforms import TabularEncoder

    torch.manual_seed(0)
    enc = TabularEncoder().fit(real, infer_schema(real))
    data = enc.transform(real)
    model = CTGAN(CTGANConfig(), enc.layout_)
    optimizers = model.configure_optimizers()
    sampler = model.batch_sampler(data, batch_size, np.random.default_rng(0))
    gen = torch.Generator().manual_seed(0)
    model.nets.train()

    def batches():
        while True:
            yield from sampler.epoch()

    it = batches()
    for _ in range(3):  # warm-up: allocator, optimiser state
        model.train_step(next(it), optimizers, gen)
    draw_s, step_s = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        model.train_step(batch, optimizers, gen)
        t2 = time.perf_counter()
        draw_s.append(t1 - t0)
        step_s.append(t2 - t1)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(min(steps, 10)):
            model.train_step(next(it), optimizers, gen)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    return {
        "steps_per_epoch": len(sampler),
        "step_s": statistics.median(step_s),
        "draw_s": statistics.median(draw_s),
        "matmul_share": matmul / total,
        "top": [(e.key, e.self_cpu_time_total / total, e.count) for e in top],
    }


def through_ray(real, epochs: int, batch_size: int) -> tuple[float, float]:
    from engine import TabularSynthesizer

    times = []
    # The first fit also starts Ray (and imports its training stack): it is run once untimed.
    TabularSynthesizer("ctgan").fit(real, epochs=1, batch_size=batch_size, seed=0, show_progress=False, checkpoint_every=10_000)
    for n in (1, 1 + epochs):
        t0 = time.perf_counter()
        TabularSynthesizer("ctgan").fit(real, epochs=n, batch_size=batch_size, seed=0, show_progress=False, checkpoint_every=10_000)
        times.append(time.perf_counter() - t0)
    return times[0], times[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=0, help="Adult rows (0: all 32,561)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--ray-epochs", type=int, default=5, help="E above")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--quick", action="store_true", help="5,000 rows, 20 steps, E = 2")
    args = ap.parse_args()
    rows, steps, ray_epochs = (5_000, 20, 2) if args.quick else (args.rows, args.steps, args.ray_epochs)
    from engine.data import load_adult

    real = load_adult()
    if rows:
        real = real.sample(n=rows, random_state=0).reset_index(drop=True)
    print(describe())
    print(f"CTGAN default config, batch {args.batch_size}, {len(real):,} Adult rows (load average now: {os.getloadavg()[0]:.1f})")
    r = in_process(real, steps, args.batch_size)
    print(f"in-process: one train_step {r['step_s'] * 1e3:.1f} ms (median of {steps}), drawing its batch {r['draw_s'] * 1e3:.2f} ms; "
          f"{r['steps_per_epoch']} steps per epoch -> {r['steps_per_epoch'] * (r['step_s'] + r['draw_s']):.2f} s per epoch")
    print(f"matrix products: {r['matmul_share']:.0%} of the step's operator time")
    for key, share, count in r["top"]:
        print(f"  {key:<40}{share:>7.1%}  x{count}")
    if args.no_ray:
        return
    t1, tn = through_ray(real, ray_epochs, args.batch_size)
    per_epoch = (tn - t1) / ray_epochs
    local = r["steps_per_epoch"] * (r["step_s"] + r["draw_s"])
    print(f"Ray Train: fit of 1 epoch {t1:.1f} s, of {1 + ray_epochs} epochs {tn:.1f} s -> {per_epoch:.2f} s per extra epoch; "
          f"in-process epoch {local:.2f} s; Ray's overhead {per_epoch - local:+.2f} s per epoch (ratio {per_epoch / local:.2f})")


if __name__ == "__main__":
    main()
