"""Train a synthesizer: ``python -m jobs.train --config jobs/configs/train_adult.yaml``.

Runs the same way locally and under ``ray job submit --working-dir . -- python -m jobs.train ...``:
inside a Ray job it joins the job's cluster; on a laptop it starts Ray on the spot.
"""
from __future__ import annotations

import argparse
import sys

from engine.core.errors import SynthError
from jobs.config import JobConfigError, TrainJobConfig, load_config


def resolve_data(data: str) -> str:
    """``adult`` names the built-in demo data set; anything else is a path or URI."""
    if data == "adult":
        from engine.data import adult_path

        return adult_path()
    return data


def run(cfg: TrainJobConfig) -> str:
    from engine.core.registry import IMAGE_MODELS
    from engine.tabular.synthesizer import TabularSynthesizer

    if cfg.model in IMAGE_MODELS:
        return run_images(cfg)
    if cfg.image_size is not None or cfg.channels is not None:
        raise JobConfigError(f"image_size and channels apply to image models, not to {cfg.model!r}.")

    synth = TabularSynthesizer(
        cfg.model,
        model_config=cfg.model_config_,
        constraints=cfg.constraints,
        num_workers=cfg.scaling.num_workers,
        use_gpu=cfg.scaling.use_gpu,
        cpus_per_worker=cfg.scaling.cpus_per_worker,
    )
    synth.fit(
        resolve_data(cfg.data),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        categorical_columns=cfg.columns.categorical,
        continuous_columns=cfg.columns.continuous,
        metadata=cfg.columns.metadata,
        checkpoint_every=cfg.checkpoint.every,
        storage_path=cfg.checkpoint.storage_path,
        run_name=cfg.checkpoint.run_name,
        max_failures=cfg.checkpoint.max_failures,
    )
    return synth.save(cfg.out)


def run_images(cfg: TrainJobConfig) -> str:
    from engine.images.synthesizer import ImageSynthesizer

    if cfg.constraints or cfg.columns != type(cfg.columns)():
        raise JobConfigError(f"columns and constraints apply to tables, not to the image model {cfg.model!r}.")
    synth = ImageSynthesizer(
        cfg.model,
        image_size=cfg.image_size,
        channels=cfg.channels,
        model_config=cfg.model_config_,
        num_workers=cfg.scaling.num_workers,
        use_gpu=cfg.scaling.use_gpu,
        cpus_per_worker=cfg.scaling.cpus_per_worker,
        checkpoint_every=cfg.checkpoint.every,
        storage_path=cfg.checkpoint.storage_path,
        run_name=cfg.checkpoint.run_name,
        max_failures=cfg.checkpoint.max_failures,
    )
    synth.fit(cfg.data, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed)
    return synth.save(cfg.out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.train", description=__doc__)
    p.add_argument("--config", help="YAML/JSON job config (see jobs/configs/)")
    p.add_argument("--data", help="training data (overrides the config)")
    p.add_argument("--out", help="model output folder or URI (overrides the config)")
    p.add_argument("--model", help="ctgan, tvae, gaussian_copula; dcgan, wgan_gp, ddpm for images")
    p.add_argument("--image-size", type=int, help="image models: resize to this square size")
    p.add_argument("--channels", type=int, help="image models: 1 grey, 3 colour")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int, help="Ray Train workers")
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--cpus-per-worker", type=float)
    p.add_argument("--checkpoint-every", type=int, help="epochs between checkpoints")
    p.add_argument("--storage-path", help="checkpoint folder or s3:// / gs:// URI")
    p.add_argument("--run-name", help="the same name resumes from its last checkpoint")
    p.add_argument("--max-failures", type=int)
    args = p.parse_args(argv)
    try:
        cfg = load_config(
            TrainJobConfig,
            args.config,
            {
                "data": args.data,
                "out": args.out,
                "model": args.model,
                "image_size": args.image_size,
                "channels": args.channels,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "seed": args.seed,
                "scaling.num_workers": args.num_workers,
                "scaling.use_gpu": args.use_gpu,
                "scaling.cpus_per_worker": args.cpus_per_worker,
                "checkpoint.every": args.checkpoint_every,
                "checkpoint.storage_path": args.storage_path,
                "checkpoint.run_name": args.run_name,
                "checkpoint.max_failures": args.max_failures,
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
