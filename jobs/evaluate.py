"""Evaluate a synthetic table: ``python -m jobs.evaluate --real R --synthetic S [--holdout H] [--target T] --out DIR``.

With ``--model-dir`` any modality's data (time series, ...) is evaluated by that saved
model's front door, read as the model was trained.

Writes ``report.json`` and ``report.html`` to ``--out`` and prints the summary;
runs the same locally and under ``ray job submit``. With ``--distributed`` the
tables (Parquet folders or URIs, possibly larger than memory) are read with Ray
Data in a streaming pass: fidelity scores from every row, the rest from random
samples of ``--sample-rows`` rows.
"""
from __future__ import annotations

import argparse
import sys

from engine.core.errors import SynthError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.evaluate", description=__doc__)
    p.add_argument("--real", required=True, help="real (training) data: CSV/Parquet file, Parquet folder or URI")
    p.add_argument("--synthetic", required=True, help="synthetic data: CSV/Parquet file, Parquet folder or URI")
    p.add_argument("--holdout", help="real rows the synthesizer never saw (enables ML efficacy and train-vs-holdout privacy)")
    p.add_argument("--target", help="target column for ML efficacy")
    p.add_argument("--out", required=True, help="folder for report.json and report.html")
    p.add_argument("--distributed", action="store_true", help="stream the tables with Ray Data (for tables larger than memory)")
    p.add_argument("--sample-rows", type=int, default=20_000, help="with --distributed: rows sampled for utility and privacy")
    p.add_argument("--no-privacy", action="store_true", help="skip the privacy diagnostics")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-dir", help="a saved model of any modality: its front door evaluates (time series: read with "
                   "the model's entity, time and static columns); without it the data are tables")
    args = p.parse_args(argv)
    from engine.evaluation import evaluate_tables

    try:
        if args.model_dir is not None:
            from engine.cli import evaluate_with_model

            if args.distributed or args.no_privacy:
                raise SynthError("--distributed and --no-privacy apply to tables without --model-dir.")
            report = evaluate_with_model(args.model_dir, args.real, args.synthetic, target=args.target,
                                         holdout=args.holdout, seed=args.seed)
        elif args.distributed:
            from engine.tabular.metrics.distributed import DistributedOptions, evaluate_distributed
            from engine.core.runtime import ray_session

            with ray_session():
                report = evaluate_distributed(
                    args.real, args.synthetic, holdout=args.holdout, target=args.target, privacy=not args.no_privacy,
                    options=DistributedOptions(sample_rows=args.sample_rows, seed=args.seed),
                )
        else:
            report = evaluate_tables(
                args.real, args.synthetic, holdout=args.holdout, target=args.target, privacy=not args.no_privacy, seed=args.seed
            )
        out = report.save(args.out)
    except SynthError as exc:
        print(f"jobs.evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"report written to {out / 'report.html'} and {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
