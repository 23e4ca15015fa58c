"""Evaluate a synthetic table: ``python -m jobs.evaluate --real R --synthetic S [--holdout H] [--target T] --out DIR``.

Writes ``report.json`` and ``report.html`` to ``--out`` and prints the summary;
runs the same locally and under ``ray job submit``.
"""
from __future__ import annotations

import argparse
import sys

from engine.errors import SynthError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.evaluate", description=__doc__)
    p.add_argument("--real", required=True, help="real (training) data: CSV/Parquet file or Parquet folder")
    p.add_argument("--synthetic", required=True, help="synthetic data: CSV/Parquet file or Parquet folder")
    p.add_argument("--holdout", help="real rows the synthesizer never saw")
    p.add_argument("--target", help="target column for ML efficacy")
    p.add_argument("--out", required=True, help="folder for report.json and report.html")
    args = p.parse_args(argv)
    from engine.evaluation import evaluate_tables

    try:
        report = evaluate_tables(args.real, args.synthetic, holdout=args.holdout, target=args.target)
        out = report.save(args.out)
    except SynthError as exc:
        print(f"jobs.evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"report written to {out / 'report.html'} and {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
