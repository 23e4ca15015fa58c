"""Generate samples (rows, images, ...) from a saved model of any modality.

Small requests write in-process (a file for tables, a folder for images)::

    python -m jobs.sample --model DIR --rows 10000 --out rows.parquet

Large requests shard over Ray Data into a Parquet folder (resumable)::

    python -m jobs.sample --model DIR --rows 10000000 --out-dir rows/ --rows-per-shard 100000 --num-actors 8

or from a config file (jobs/configs/sample_adult_cluster.yaml). Conditions are
the model's: ``--conditions '{"income": ">50K"}'`` for a table,
``--label 7`` (``{"label": "7"}``) for an image model.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.core.errors import SynthError
from engine.core.runtime import VERBOSE_HELP, set_verbose
from jobs.config import SAMPLE_STAGES, JobConfigError, SampleJobConfig, check_location, load_config, options_for


def run(cfg: SampleJobConfig) -> int:
    """Sample as ``cfg`` says; return the number of samples written."""
    from engine.cli import check_format, sharded_precision
    from engine.core.registry import load_synthesizer

    synth = load_synthesizer(check_location(cfg.model, "model"))
    sampling = options_for(type(synth), cfg.options, model=synth.model, stages=SAMPLE_STAGES)
    # Loosely matched to what the model knows (">50K" finds " >50K"; {"label": 7} is an image's class).
    conditions = synth.coerce_conditions(cfg.all_conditions())
    unit = synth.modality_info().unit
    if cfg.out_dir:
        from engine.batch.sharded import sample_to_parquet
        from engine.core.runtime import ray_session

        precision = sharded_precision(synth, sampling)
        with ray_session():
            result = sample_to_parquet(
                cfg.model, cfg.out_dir, num_rows=cfg.num_rows, conditions=conditions, seed=cfg.seed,
                rows_per_shard=cfg.rows_per_shard, num_actors=cfg.num_actors,
                use_gpu=cfg.use_gpu, cpus_per_actor=cfg.cpus_per_actor, precision=precision,
            )
        print(f"wrote {result.num_rows} {unit}s to {cfg.out_dir}: shards written {len(result.written_shards)}, "
              f"already complete {len(result.skipped_shards)}")
        return result.num_rows
    check_format(synth, cfg.format, "'format'")
    synth.set_sampling_options(sampling)
    table = synth.sample_table(cfg.num_rows, conditions=conditions, seed=cfg.seed)
    synth.write_samples(table, cfg.out, cfg.format)
    # Counted here, not from the table: a sample may take several rows (a sequence in long format).
    print(f"wrote {cfg.num_rows} {unit}s to {cfg.out}")
    return cfg.num_rows


def _json_conditions(text: str | None) -> dict | None:
    """``--conditions`` read as JSON; an error naming the flag when it is not JSON."""
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobConfigError(
            f"--conditions must be a JSON object such as '{{\"income\": \">50K\"}}'; got {text!r} ({exc.msg} at character {exc.pos})."
        ) from None


def main(argv: list[str] | None = None) -> int:
    from engine.cli import add_modality_options, flag_values

    p = argparse.ArgumentParser(prog="python -m jobs.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML/JSON job config")
    p.add_argument("--model", help="saved model folder or URI (an absolute path or a URI under `ray job submit`)")
    p.add_argument("--rows", type=int, help="number of samples (exact)")
    p.add_argument("--conditions", help='JSON object, e.g. \'{"income": " >50K"}\' for a table, \'{"label": "7"}\' for images')
    p.add_argument("--label", help="alias of conditions.label (image models: the class of every image)")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output written in-process: a .parquet/.csv/.json file for tables, a folder for images")
    p.add_argument("--format", help="format of --out, one the model's modality writes (default: by the output)")
    p.add_argument("--out-dir", help="output folder of Parquet shards (sharded over Ray Data)")
    p.add_argument("--rows-per-shard", type=int)
    p.add_argument("--num-actors", type=int, help="sampling actors (default: one per CPU)")
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="give each sampling actor a GPU (default: when the cluster has one now; say so on autoscaling clusters)")
    p.add_argument("--cpus-per-actor", type=float, help="CPUs reserved by each sampling actor (default: 1)")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    try:
        add_modality_options(p, SAMPLE_STAGES)
        args = p.parse_args(argv)
        set_verbose(args.verbose)
        cfg = load_config(
            SampleJobConfig,
            args.config,
            {
                "model": args.model,
                "num_rows": args.rows,
                "conditions": _json_conditions(args.conditions),
                "label": args.label,
                "seed": args.seed,
                "out": args.out,
                "format": args.format,
                "out_dir": args.out_dir,
                "rows_per_shard": args.rows_per_shard,
                "num_actors": args.num_actors,
                "use_gpu": args.use_gpu,
                "cpus_per_actor": args.cpus_per_actor,
                **flag_values(args),
            },
        )
        run(cfg)
    except SynthError as exc:
        print(f"jobs.sample: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
