"""Generate rows from a saved model.

Small requests write one file in-process::

    python -m jobs.sample --model DIR --rows 10000 --out rows.parquet

Large requests shard over Ray Data into a Parquet folder (resumable)::

    python -m jobs.sample --model DIR --rows 10000000 --out-dir rows/ --rows-per-shard 100000 --num-actors 8

or from a config file (jobs/configs/sample_adult_cluster.yaml).
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.core.errors import SynthError
from jobs.config import JobConfigError, SampleJobConfig, load_config


def run(cfg: SampleJobConfig) -> int:
    from engine.cli import _write_table
    from engine.images.synthesizer import ImageSynthesizer
    from engine.images.io import save_dataset
    from engine.core.registry import load_synthesizer

    synth = load_synthesizer(cfg.model)
    is_image = isinstance(synth, ImageSynthesizer)
    if is_image and cfg.conditions:
        raise JobConfigError("conditions apply to tables; ask an image model for a class with 'label'.")
    if not is_image and cfg.label is not None:
        raise JobConfigError("'label' applies to image models; ask a table model with 'conditions'.")
    conditions = cfg.label if is_image else (cfg.conditions or None)
    if cfg.precision is not None:
        if is_image:
            raise JobConfigError("'precision' applies to table models (ctgan, tvae); image models sample in float32.")
        synth.sampling_precision = cfg.precision
    if cfg.out_dir:
        from engine.core.runtime import ray_session
        from engine.batch.sharded import sample_to_parquet

        with ray_session():
            result = sample_to_parquet(
                cfg.model, cfg.out_dir, num_rows=cfg.num_rows, conditions=conditions, seed=cfg.seed,
                rows_per_shard=cfg.rows_per_shard, num_actors=cfg.num_actors,
                use_gpu=cfg.use_gpu, cpus_per_actor=cfg.cpus_per_actor, precision=cfg.precision,
            )
        print(f"shards written {len(result.written_shards)}, already complete {len(result.skipped_shards)}")
        return result.num_rows
    if is_image:  # 'out' names a folder: Parquet with PNG bytes and labels
        result = synth.sample(cfg.num_rows, labels=conditions, seed=cfg.seed)
        save_dataset(result, cfg.out)
        return len(result)
    rows = synth.sample(cfg.num_rows, conditions=conditions, seed=cfg.seed)
    _write_table(rows, cfg.out)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.sample", description=__doc__)
    p.add_argument("--config", help="YAML/JSON job config")
    p.add_argument("--model", help="saved model folder or URI")
    p.add_argument("--rows", type=int, help="number of rows (exact)")
    p.add_argument("--conditions", help='JSON object, e.g. \'{"income": " >50K"}\'')
    p.add_argument("--label", help="image models: the class of every image")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output .parquet or .csv file (in-process); a folder for image models")
    p.add_argument("--out-dir", help="output folder of Parquet shards (sharded over Ray Data)")
    p.add_argument("--rows-per-shard", type=int)
    p.add_argument("--num-actors", type=int, help="sampling actors (default: one per CPU)")
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="give each sampling actor a GPU (default: when the cluster has one now; say so on autoscaling clusters)")
    p.add_argument("--cpus-per-actor", type=float, help="CPUs reserved by each sampling actor (default: 1)")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                   help="table models: numeric precision of generation (default: the one saved with the model)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(
            SampleJobConfig,
            args.config,
            {
                "model": args.model,
                "num_rows": args.rows,
                "conditions": json.loads(args.conditions) if args.conditions else None,
                "label": args.label,
                "seed": args.seed,
                "out": args.out,
                "out_dir": args.out_dir,
                "rows_per_shard": args.rows_per_shard,
                "num_actors": args.num_actors,
                "use_gpu": args.use_gpu,
                "cpus_per_actor": args.cpus_per_actor,
                "precision": args.precision,
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
