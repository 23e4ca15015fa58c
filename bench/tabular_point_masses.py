"""Point masses in numeric columns: KSComplement of Adult's spiky columns with and without them.

Trains our CTGAN (or TVAE) twice on UCI Adult in one run, once with the encoder's point-mass
modes (the default) and once without (the mixture fitted on every value, as before), and prints
KSComplement of every numeric column for both, with the ratio.

    python bench/tabular_point_masses.py --quick          # 5 epochs each
    python bench/tabular_point_masses.py --epochs 30 --model tvae
"""
from __future__ import annotations

import argparse
import functools
import time

import numpy as np


def run(model: str, epochs: int, point_masses: bool, real, rows: int) -> tuple[dict[str, float], float]:
    import engine.tabular.synthesizer as front
    from engine import TabularSynthesizer
    from engine.tabular.metrics import KSComplement
    from engine.tabular.transforms import TabularEncoder

    saved = front.TabularEncoder
    front.TabularEncoder = functools.partial(TabularEncoder, point_masses=point_masses)  # the one switch compared
    try:
        t0 = time.perf_counter()
        synth = TabularSynthesizer(model=model).fit(real, epochs=epochs, seed=0, show_progress=False)
        fit_s = time.perf_counter() - t0
    finally:
        front.TabularEncoder = saved
    fake = synth.sample(num_rows=rows, seed=1)
    numeric = [c for c in real.columns if real[c].dtype.kind in "if"]
    return {c: KSComplement.compute(real[c], fake[c]) for c in numeric}, fit_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ctgan", choices=("ctgan", "tvae"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="5 epochs")
    args = ap.parse_args()
    epochs = 5 if args.quick else args.epochs
    import os
    import platform

    from engine.data import load_adult

    real = load_adult()
    print(f"{args.model}, {epochs} epochs on Adult ({len(real)} rows); CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with_pm, t_with = run(args.model, epochs, True, real, len(real))
    without, t_without = run(args.model, epochs, False, real, len(real))
    print(f"{'column':<16}{'point masses':>14}{'none (before)':>15}{'ratio':>8}")
    for c in with_pm:
        print(f"{c:<16}{with_pm[c]:>14.3f}{without[c]:>15.3f}{with_pm[c] / without[c]:>8.2f}")
    print(f"{'mean':<16}{np.mean(list(with_pm.values())):>14.3f}{np.mean(list(without.values())):>15.3f}")
    print(f"fit seconds: {t_with:.0f} with, {t_without:.0f} without (machine shared, timings inflated)")


if __name__ == "__main__":
    main()
