"""Our CTGAN against SDV's CTGANSynthesizer on UCI Adult, in one process.

Prints fit time, sampling rows/s for 100,000 rows, SDMetrics QualityReport
score, and our/SDV ratios; the time our CTGAN takes to reach SDV's score
(training continued epoch budget by epoch budget from its own checkpoints);
and conditional sampling of a category that holds one row in 32,561.

    python bench/tabular_vs_sdv.py                 # SDV at 300 epochs (about 20 minutes on 2 cores)
    python bench/tabular_vs_sdv.py --sdv-epochs 50 # a shorter comparison

Needs the `sdv` extra (pip install -e ".[sdv,dev]").
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402 - bench/machine.py, beside this script

warnings.filterwarnings("ignore")

RARE_COLUMN, RARE_VALUE = "native-country", " Holand-Netherlands"


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: dict) -> float:
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(real, synthetic, metadata, verbose=False)
    return float(report.get_score())


def rows_per_second(fn, n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(n)
        best = min(best, time.perf_counter() - t0)
        assert len(out) == n, (len(out), n)
    return n / best


def run_sdv(real: pd.DataFrame, epochs: int, sample_rows: int) -> dict:
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer
    from sdv.sampling import Condition

    metadata = Metadata.detect_from_dataframes({"adult": real})
    synth = CTGANSynthesizer(metadata, epochs=epochs, verbose=False)
    t0 = time.perf_counter()
    synth.fit({"adult": real})  # SDV 2 takes and returns {table name: DataFrame}
    fit_s = time.perf_counter() - t0

    def sample(n: int) -> pd.DataFrame:
        return synth.sample(num_rows=n)["adult"]

    rate = rows_per_second(sample, sample_rows)
    score = quality(real, sample(len(real)), metadata.to_dict()["tables"]["adult"])
    t0 = time.perf_counter()
    try:
        rare = synth.sample_from_conditions(
            [Condition(num_rows=1000, column_values={RARE_COLUMN: RARE_VALUE})], max_tries_per_batch=100
        )["adult"]
        rare_rate = len(rare) / (time.perf_counter() - t0) if len(rare) else 0.0
        rare_note = f"{len(rare)} of 1000 rows"
    except Exception as exc:  # SDV raises when rejection sampling finds nothing
        rare_rate, rare_note = 0.0, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return {"fit_s": fit_s, "rows_per_s": rate, "score": score, "rare_rows_per_s": rare_rate, "rare_note": rare_note,
            "metadata": metadata.to_dict()["tables"]["adult"]}


def run_ours(real: pd.DataFrame, budgets: list[int], target_score: float | None, metadata: dict, sample_rows: int,
             batch_size: int | None) -> dict:
    from engine import TabularSynthesizer
    from engine.core.runtime import ray_session

    trace = []
    storage = tempfile.mkdtemp(prefix="bench-ctgan-")
    elapsed = 0.0
    reached = None
    with ray_session():
        for epochs in budgets:
            synth = TabularSynthesizer("ctgan")
            done = len(trace and trace[-1]["history"] or [])
            t0 = time.perf_counter()
            # Each budget continues the same run from its last checkpoint. The first fit's wall time counts
            # whole (encoder, Ray Train start-up, epochs); later fits add only the seconds of their new epochs,
            # so the total is what one uninterrupted training of that many epochs takes. A confirmation run
            # below measures that directly.
            synth.fit(real, epochs=epochs, batch_size=batch_size, storage_path=storage, run_name="bench",
                      checkpoint_every=max(1, min(budgets)), show_progress=False)
            wall = time.perf_counter() - t0
            elapsed += wall if not trace else sum(h["seconds"] for h in synth.history_[done:])
            score = quality(real, synth.sample(len(real), seed=0), metadata)
            trace.append({"epochs": epochs, "cumulative_fit_s": round(elapsed, 1), "score": round(score, 4),
                          "history": synth.history_})
            print(f"  ours: {epochs} epochs, {elapsed:.1f} s, quality {score:.4f}", flush=True)
            if reached is None and target_score is not None and score >= target_score:
                reached = {"epochs": epochs, "fit_s": elapsed, "score": score}
                break
        if reached is not None:
            # One uninterrupted training of the same length, from scratch, timed on the wall clock.
            fresh = TabularSynthesizer("ctgan")
            t0 = time.perf_counter()
            fresh.fit(real, epochs=reached["epochs"], batch_size=batch_size, show_progress=False)
            reached["confirmation_fit_s"] = time.perf_counter() - t0
            reached["confirmation_score"] = quality(real, fresh.sample(len(real), seed=0), metadata)
            print(f"  ours, one run of {reached['epochs']} epochs: {reached['confirmation_fit_s']:.1f} s, "
                  f"quality {reached['confirmation_score']:.4f}", flush=True)
    for row in trace:
        row.pop("history")
    rate = rows_per_second(lambda n: synth.sample(n, seed=1), sample_rows)
    rare_rate = rows_per_second(lambda n: synth.sample(n, conditions={RARE_COLUMN: RARE_VALUE}, seed=2), sample_rows)
    # The default precision ("auto") is bfloat16 on CPUs that multiply it natively: show what float32 gives.
    precisions = {}
    for precision in ("auto", "float32"):
        synth.sampling_precision = precision
        precisions[precision] = {
            "rows_per_s": rows_per_second(lambda n: synth.sample(n, seed=1), sample_rows),
            "score": quality(real, synth.sample(len(real), seed=3), metadata),
        }
    synth.sampling_precision = "auto"
    return {"trace": trace, "reached": reached, "rows_per_s": rate, "rare_rows_per_s": rare_rate, "last": trace[-1],
            "precisions": precisions, "auto_dtype": _auto_dtype(synth)}


def _auto_dtype(synth) -> str:
    """What "auto" means for this model on this machine, e.g. "bfloat16 on cpu"."""
    from engine.core.precision import generation_dtype

    device = synth._source.model.device
    return f"{str(generation_dtype('auto', device)).replace('torch.', '')} on {device}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sdv-epochs", type=int, default=300)
    p.add_argument("--budgets", default="5,10,20,30,45,60,80,100", help="our cumulative epoch budgets")
    p.add_argument("--batch-size", type=int, default=None, help="our batch size (default: the model's)")
    p.add_argument("--sample-rows", type=int, default=100_000)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--ours-only", type=float, metavar="SCORE", default=None,
                   help="tuning runs: skip SDV and train ours until SCORE (no comparison is printed)")
    args = p.parse_args()

    from engine.data import load_adult

    real = load_adult()
    print(f"Adult: {real.shape[0]} rows x {real.shape[1]} columns")
    print(describe(), flush=True)  # the figures below hold for this CPU only
    if args.ours_only is not None:
        from sdv.metadata import Metadata

        metadata = Metadata.detect_from_dataframes({"adult": real}).to_dict()["tables"]["adult"]
        ours = run_ours(real, [int(b) for b in args.budgets.split(",")], args.ours_only, metadata, args.sample_rows,
                        args.batch_size)
        print(json.dumps(ours, indent=1, default=str))
        return
    print(f"SDV CTGANSynthesizer, {args.sdv_epochs} epochs ...", flush=True)
    sdv = run_sdv(real, args.sdv_epochs, args.sample_rows)
    print(f"  SDV: fit {sdv['fit_s']:.1f} s, quality {sdv['score']:.4f}, {sdv['rows_per_s']:,.0f} rows/s")
    budgets = [int(b) for b in args.budgets.split(",")]
    print("ours (ctgan), training until SDV's score is reached ...", flush=True)
    ours = run_ours(real, budgets, sdv["score"], sdv["metadata"], args.sample_rows, args.batch_size)

    print("\n=== results ===")
    print(describe())
    print(f"SDV  fit ({args.sdv_epochs} epochs): {sdv['fit_s']:.1f} s   quality {sdv['score']:.4f}")
    if ours["reached"]:
        r = ours["reached"]
        print(f"ours reached {r['score']:.4f} after {r['epochs']} epochs in {r['fit_s']:.1f} s "
              f"-> fit-time ratio ours/SDV = {r['fit_s'] / sdv['fit_s']:.3f} (target <= 0.2)")
        print(f"  one uninterrupted run of {r['epochs']} epochs: {r['confirmation_fit_s']:.1f} s "
              f"(ratio {r['confirmation_fit_s'] / sdv['fit_s']:.3f}), quality {r['confirmation_score']:.4f}")
    else:
        last = ours["last"]
        print(f"ours did NOT reach SDV's score within the budgets: best trace {ours['trace']} "
              f"(last {last['score']:.4f} at {last['cumulative_fit_s']} s)")
    print(f"sampling {args.sample_rows:,} rows: ours {ours['rows_per_s']:,.0f} rows/s, SDV {sdv['rows_per_s']:,.0f} rows/s "
          f"-> ratio {ours['rows_per_s'] / sdv['rows_per_s']:.2f}x (target >= 5x)")
    for precision, fig in ours["precisions"].items():
        print(f"  sampling precision {precision!r}: {fig['rows_per_s']:,.0f} rows/s "
              f"({fig['rows_per_s'] / sdv['rows_per_s']:.2f}x SDV), quality of its rows {fig['score']:.4f}")
    print(f"  ('auto' runs in {ours['auto_dtype']} on this machine)")
    print(f"rare category ({RARE_VALUE.strip()}, 1 in {len(real)}): ours {ours['rare_rows_per_s']:,.0f} rows/s = "
          f"{ours['rare_rows_per_s'] / ours['rows_per_s']:.2f} of our unconditional rate (target >= 0.5); "
          f"SDV {sdv['rare_rows_per_s']:,.0f} rows/s ({sdv['rare_note']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sdv": {k: v for k, v in sdv.items() if k != "metadata"}, "ours": ours}, f, indent=2)


if __name__ == "__main__":
    main()
