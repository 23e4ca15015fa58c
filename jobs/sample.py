"""Generate rows from a saved model.

Small requests write one file in-process::

    python -m jobs.sample --model DIR --rows 10000 --out rows.parquet

Large requests shard over Ray Data into a Parquet folder (resumable)::

    python -m jobs.sample --model DIR --rows 10000000 --out-dir rows/ --rows-per-shard 100000 --num-actors 8
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.errors import SynthError
from jobs.config import SampleJobConfig, load_config


def run(cfg: SampleJobConfig) -> int:
    from engine.cli import _write_table
    from engine.synthesizer import TabularSynthesizer

    if cfg.out_dir:
        from engine.runtime import ray_session
        from engine.sampling.sharded import sample_to_parquet

        with ray_session():
            result = sample_to_parquet(
                cfg.model, cfg.out_dir, num_rows=cfg.num_rows, conditions=cfg.conditions or None, seed=cfg.seed,
                rows_per_shard=cfg.rows_per_shard, num_actors=cfg.num_actors,
            )
        print(f"shards written {len(result.written_shards)}, already complete {len(result.skipped_shards)}")
        return result.num_rows
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
    p.add_argument("--out", help="output .parquet or .csv file (in-process)")
    p.add_argument("--out-dir", help="output folder of Parquet shards (sharded over Ray Data)")
    p.add_argument("--rows-per-shard", type=int)
    p.add_argument("--num-actors", type=int, help="sampling actors (default: one per CPU)")
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
                "out_dir": args.out_dir,
                "rows_per_shard": args.rows_per_shard,
                "num_actors": args.num_actors,
            },
        )
        n = run(cfg)
    except (SynthError, json.JSONDecodeError) as exc:
        print(f"jobs.sample: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {cfg.out_dir or cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
