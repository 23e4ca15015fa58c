"""Train a synthesizer: ``python -m jobs.train --config jobs/configs/train_adult.yaml``.

Runs the same way locally and under ``ray job submit --working-dir . -- python -m jobs.train ...``:
inside a Ray job it joins the job's cluster; on a laptop it starts Ray on the spot.
The model name picks the modality (registry); the modality's own options
(``--categorical``, ``--image-size``, ...) are those its front door declares.
"""
from __future__ import annotations

import argparse
import sys

from engine.core.errors import SynthError
from engine.core.runtime import VERBOSE_HELP, set_verbose
from jobs.config import TRAIN_STAGES, TrainJobConfig, check_location, load_config


def resolve_data(data: str) -> str:
    """``adult`` names the built-in demo data set; anything else is a path or URI (that must exist)."""
    if data == "adult":
        from engine.data import adult_path

        return adult_path()
    return check_location(data, "training data")


def run(cfg: TrainJobConfig) -> str:
    """Fit the config's model (of whichever modality) and save it; return where it was saved."""
    synth = cfg.front_door().fit_with_options(
        cfg.model,
        resolve_data(cfg.data),
        model_config=cfg.model_config_,
        num_workers=cfg.scaling.num_workers,
        use_gpu=cfg.scaling.use_gpu,
        cpus_per_worker=cfg.scaling.cpus_per_worker,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        training={
            "checkpoint_every": cfg.checkpoint.every,
            "storage_path": cfg.checkpoint.storage_path,
            "run_name": cfg.checkpoint.run_name,
            "max_failures": cfg.checkpoint.max_failures,
            **({"time_budget": cfg.time_budget} if cfg.time_budget is not None else {}),
        },
        options=cfg.options,
    )
    return synth.save(cfg.out)


def main(argv: list[str] | None = None) -> int:
    from engine.cli import add_modality_options, flag_values

    p = argparse.ArgumentParser(prog="python -m jobs.train", description=__doc__)
    p.add_argument("--config", help="YAML/JSON job config (see jobs/configs/)")
    p.add_argument("--data", help="training data (overrides the config)")
    p.add_argument("--out", help="model output folder or URI (overrides the config)")
    p.add_argument("--model", help="a model of any modality: ctgan, tvae, gaussian_copula; dcgan, wgan_gp, ddpm; ... "
                   "(default: a table model chosen by the data's size and the time budget)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--time-budget", metavar="DURATION", help="training time limit: '90s', '10m', '1h' or seconds")
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int, help="Ray Train workers")
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--cpus-per-worker", type=float)
    p.add_argument("--checkpoint-every", type=int, help="epochs between checkpoints")
    p.add_argument("--storage-path", help="checkpoint folder or s3:// / gs:// URI")
    p.add_argument("--run-name", help="the same name resumes from its last checkpoint")
    p.add_argument("--max-failures", type=int)
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    try:
        add_modality_options(p, TRAIN_STAGES)
        args = p.parse_args(argv)
        set_verbose(args.verbose)
        cfg = load_config(
            TrainJobConfig,
            args.config,
            {
                "data": args.data,
                "out": args.out,
                "model": args.model,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "time_budget": args.time_budget,
                "seed": args.seed,
                "scaling.num_workers": args.num_workers,
                "scaling.use_gpu": args.use_gpu,
                "scaling.cpus_per_worker": args.cpus_per_worker,
                "checkpoint.every": args.checkpoint_every,
                "checkpoint.storage_path": args.storage_path,
                "checkpoint.run_name": args.run_name,
                "checkpoint.max_failures": args.max_failures,
                **flag_values(args),
            },
        )
        where = run(cfg)
    except SynthError as exc:
        print(f"jobs.train: error: {exc}", file=sys.stderr)
        return 2
    print(f"model saved to {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
