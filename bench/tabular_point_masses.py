"""Point masses in numeric columns: KSComplement of Adult's numeric columns with and without them.

Trains our CTGAN (or TVAE) twice on UCI Adult in one run, once with the encoder's point-mass
modes (the default) and once without (the mixture fitted on every value, as before), and prints
KSComplement of every numeric column for both, with the ratio. Training runs in this process
through the model contract (encoder, batch sampler, train_step: what each Ray Train worker runs),
so the comparison isolates the encoder and costs no cluster start.

    python bench/tabular_point_masses.py --quick          # 5,000 rows, 4 epochs each
    python bench/tabular_point_masses.py --epochs 30 --model tvae
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402 - bench/machine.py, beside this script


def run(model_name: str, epochs: int, point_masses: bool, real, seed: int = 0) -> tuple[dict[str, float], float]:
    from engine.tabular.metrics import KSComplement
    from engine.tabular.models.ctgan import CTGAN, CTGANConfig
    from engine.tabular.models.tvae import TVAE, TVAEConfig
    from engine.tabular.schema.infer import infer_schema
    from engine.tabular.transforms import TabularEncoder

    torch.manual_seed(seed)
    enc = TabularEncoder(point_masses=point_masses, seed=seed).fit(real, infer_schema(real))
    data = enc.transform(real)
    cls, cfg = (CTGAN, CTGANConfig()) if model_name == "ctgan" else (TVAE, TVAEConfig())
    model = cls(cfg, enc.layout_)
    optimizers = model.configure_optimizers()
    batches = model.batch_sampler(data, 500, np.random.default_rng(seed))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for net in model.nets.values():
        net.train()
    for _ in range(epochs):
        for batch in batches.epoch():
            model.train_step(batch, optimizers, gen)
    fit_s = time.perf_counter() - t0
    for net in model.nets.values():
        net.eval()
    fake = enc.inverse_transform_spans(model.generate_spans(len(real), None, gen), rng=np.random.default_rng(seed + 1))
    numeric = [c for c in real.columns if real[c].dtype.kind in "if"]
    return {c: KSComplement.compute(real[c], fake[c]) for c in numeric}, fit_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ctgan", choices=("ctgan", "tvae"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--rows", type=int, default=0, help="train on a random subsample of this many rows (0: all)")
    ap.add_argument("--quick", action="store_true", help="5,000 rows, 4 epochs (40 steps)")
    args = ap.parse_args()
    epochs, rows = (4, 5_000) if args.quick else (args.epochs, args.rows)
    from engine.data import load_adult

    real = load_adult()
    if rows:
        real = real.sample(n=rows, random_state=0).reset_index(drop=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"{args.model}, {epochs} epochs on {len(real)} Adult rows, in-process\n{describe()}")
    with_pm, t_with = run(args.model, epochs, True, real)
    without, t_without = run(args.model, epochs, False, real)
    print(f"{'KSComplement':<16}{'point masses':>14}{'none (before)':>15}{'ratio':>8}")
    for c in with_pm:
        print(f"{c:<16}{with_pm[c]:>14.3f}{without[c]:>15.3f}{with_pm[c] / without[c]:>8.2f}")
    print(f"{'mean':<16}{np.mean(list(with_pm.values())):>14.3f}{np.mean(list(without.values())):>15.3f}")
    print(f"training seconds: {t_with:.0f} with, {t_without:.0f} without (on a shared machine timings are inflated)")


if __name__ == "__main__":
    main()
