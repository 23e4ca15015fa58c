"""Benchmark of the evaluation layer (not a test): ``python bench/evaluate.py [--distributed-rows 10000000]``.

1. Adult: real (80% of Adult) vs 32,561 synthetic rows (Adult rows resampled
   with noise), timing our fidelity scores, our full report (fidelity,
   utility, detection, privacy, plots, HTML) and SDMetrics' QualityReport on
   the same pair, with the ratios.
2. Opt-in (``--distributed-rows N``): the distributed evaluator on two Parquet
   folders of N rows each, in rows/s, with the driver's peak RSS and the peak
   memory used on the machine during the run.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def noisy_copy(real: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A stand-in synthesizer: rows resampled, numbers jittered, 10% of the categories redrawn."""
    rng = np.random.default_rng(seed)
    out = real.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    for col in out.columns:
        if pd.api.types.is_numeric_dtype(out[col]):
            std = float(real[col].std()) or 1.0
            out[col] = (out[col] + rng.normal(0, 0.05 * std, rows)).round().astype(real[col].dtype)
        else:
            redraw = rng.random(rows) < 0.1
            out.loc[redraw, col] = rng.choice(real[col].dropna().unique(), int(redraw.sum()))
    return out


def bench_adult() -> None:
    from sdmetrics.reports.single_table import QualityReport

    from engine.data import load_adult
    from engine.evaluation import evaluate_tables, quality_scores
    from engine.tabular.schema import infer_schema

    adult = load_adult()
    train = adult.sample(frac=0.8, random_state=0)
    holdout = adult.drop(index=train.index)
    synthetic = noisy_copy(train, len(adult), seed=1)
    schema = infer_schema(train)

    t = time.perf_counter()
    ours = quality_scores(train, synthetic, schema)
    t_fidelity = time.perf_counter() - t
    t = time.perf_counter()
    report = evaluate_tables(train, synthetic, holdout=holdout, target="income", schema=schema)
    html = report.to_html()
    t_full = time.perf_counter() - t

    metadata = {"columns": {c.name: {"sdtype": "numerical" if c.kind.is_numeric else "categorical"} for c in schema.columns}}
    t = time.perf_counter()
    sdm = QualityReport()
    sdm.generate(train, synthetic, metadata, verbose=False)
    t_sdm = time.perf_counter() - t

    print(f"Adult: real {len(train):,} rows, synthetic {len(synthetic):,} rows, holdout {len(holdout):,} rows")
    print(f"  our fidelity scores         {t_fidelity:7.2f} s   score {ours['score']:.4f}")
    print(f"  SDMetrics QualityReport     {t_sdm:7.2f} s   score {sdm.get_score():.4f} (bins per table; see fidelity.py)")
    print(f"  our full report + HTML      {t_full:7.2f} s   ({len(html) / 1e6:.1f} MB of HTML)")
    print(f"  ratio fidelity / SDMetrics  {t_fidelity / t_sdm:7.2f}")
    print(f"  ratio full / SDMetrics      {t_full / t_sdm:7.2f}")
    print("  " + report.summary().replace("\n", "\n  "))


def _write_big(adult: pd.DataFrame, folder: Path, rows: int, seed: int, chunk: int = 500_000) -> None:
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, rows, chunk)):
        noisy_copy(adult, min(chunk, rows - start), seed + i).to_parquet(folder / f"part-{i:05d}.parquet", index=False)


def bench_distributed(rows: int) -> None:
    import psutil
    import ray

    from engine.data import load_adult
    from engine.tabular.metrics.distributed import evaluate_distributed

    root = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    try:
        adult = load_adult()
        t = time.perf_counter()
        _write_big(adult, root / "real", rows, seed=10)
        _write_big(adult, root / "synthetic", rows, seed=20_000)
        print(f"Distributed: wrote 2 x {rows:,} rows of Parquet in {time.perf_counter() - t:.1f} s")
        ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        baseline = psutil.virtual_memory().used
        peak = [baseline]
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], psutil.virtual_memory().used)

        threading.Thread(target=watch, daemon=True).start()
        t = time.perf_counter()
        report = evaluate_distributed(str(root / "real"), str(root / "synthetic"), detection=False)
        elapsed = time.perf_counter() - t
        done.set()
        driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {2 * rows:,} rows in {elapsed:.1f} s: {2 * rows / elapsed:,.0f} rows/s (both tables, privacy on a "
              f"{report.details['distributed']['sample_rows']['real']:,}-row sample)")
        print(f"  driver peak RSS {driver_peak:,.0f} MB; machine memory in use rose by at most "
              f"{(peak[0] - baseline) / 2**20:,.0f} MB (shared machine: other processes count too)")
        print(f"  score {report.similarity_score:.4f}; approximate columns: {sorted(report.details['distributed']['approximate'])}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--distributed-rows", type=int, default=0, help="rows per table for the distributed benchmark (0: skip)")
    p.add_argument("--skip-adult", action="store_true", help="only the distributed benchmark")
    args = p.parse_args()
    if not args.skip_adult:
        bench_adult()
    if args.distributed_rows:
        bench_distributed(args.distributed_rows)


if __name__ == "__main__":
    main()
