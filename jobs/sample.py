"""Generate rows from a saved model: ``python -m jobs.sample --model DIR --rows N --out FILE``."""
from __future__ import annotations

import argparse
import json
import sys

from engine.errors import SynthError
from jobs.config import SampleJobConfig, load_config


def run(cfg: SampleJobConfig) -> int:
    from engine.cli import _write_table
    from engine.synthesizer import TabularSynthesizer

    synth = TabularSynthesizer.load(cfg.model)
    rows = synth.sample(cfg.num_rows, conditions=cfg.conditions or None, seed=cfg.seed)
    _write_table(rows, cfg.out)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.sample", description=__doc__)
    p.add_argument("--config", help="YAML/JSON job config")
    p.add_argument("--model", help="saved model folder or URI")
    p.add_argument("--rows", type=int, help="number of rows (exact)")
    p.add_argument("--conditions", help='JSON object, e.g. \'{"income": " >50K"}\'')
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output .parquet or .csv file")
    args = p.parse_args(argv)
    try:
        cfg = load_config(
            SampleJobConfig,
            args.config,
            {
                "model": args.model,
                "num_rows": args.rows,
                "conditions": json.loads(args.conditions) if args.conditions else None,
                "seed": args.seed,
                "out": args.out,
            },
        )
        n = run(cfg)
    except (SynthError, json.JSONDecodeError) as exc:
        print(f"jobs.sample: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
