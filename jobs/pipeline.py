"""Train, sample and evaluate in one go: ``python -m jobs.pipeline --demo``.

The demo holds out 20% of the built-in UCI Adult table, trains the table front
door's default model (chosen by the data's size and the time budget) on the rest, samples as many rows as it trained on, and writes the evaluation report
(fidelity, ML efficacy on the holdout, privacy) next to the model and data.
A YAML config (``--config``, fields of ``jobs.config.PipelineJobConfig``)
gives the same options; flags override it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.core.errors import SynthError
from engine.core.runtime import VERBOSE_HELP, set_verbose
from jobs.config import PipelineJobConfig, load_config, pipeline_models


def run_pipeline(
    *,
    data: str,
    out: str,
    model: str | None = None,
    epochs: int | None = None,
    time_budget: float | str | None = None,
    target: str | None = None,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    num_workers: int = 1,
    use_gpu: bool | None = None,
    cpus_per_worker: float | None = None,
) -> dict[str, str]:
    """Hold out ``holdout_fraction`` of the rows of ``data``, fit ``model`` on the rest, sample as many, evaluate.

    ``model`` is one of :func:`jobs.config.pipeline_models` (None: the front door's default); its
    front door comes from the registry. ``time_budget`` bounds the training time (torch models).
    """
    from engine.core.registry import get_modality, modality_for_model
    from engine.tabular.schema.io import read_table
    from jobs.config import JobConfigError, pipeline_models

    from jobs.config import PIPELINE_MODALITY

    if model is not None and model not in pipeline_models():
        raise JobConfigError(f"The pipeline runs the models {', '.join(map(repr, pipeline_models()))}; got {model!r}.")
    modality = modality_for_model(model) if model is not None else get_modality(PIPELINE_MODALITY)
    out_dir = Path(out)
    table = read_table(data)
    holdout = table.sample(frac=holdout_fraction, random_state=seed)
    train = table.drop(index=holdout.index).reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)

    t0 = time.perf_counter()
    synth = modality.synthesizer_class().fit_with_options(
        model, train, num_workers=num_workers, use_gpu=use_gpu, cpus_per_worker=cpus_per_worker, epochs=epochs, seed=seed,
        training={"time_budget": time_budget} if time_budget is not None else None,
    )
    fit_s = time.perf_counter() - t0
    model = synth.model  # the one the front door chose when none was named
    model_dir = synth.save(out_dir / "model")

    t0 = time.perf_counter()
    synthetic = synth.sample_table(len(train), seed=seed)
    sample_s = time.perf_counter() - t0
    data_path = str(out_dir / "synthetic.parquet")
    synth.write_samples(synthetic, data_path)

    # The front door's evaluate knows what it learned (a table's column kinds); the holdout enables ML efficacy.
    report = synth.evaluate(train, synthetic, target=target, holdout_data=holdout)
    report.save(out_dir / "report")
    print(report.summary())
    print(
        f"\nfit {fit_s:.1f} s ({model}, {len(train)} {modality.unit}s); sampled {synthetic.num_rows} {modality.unit}s in {sample_s:.2f} s\n"
        f"model:     {model_dir}\n"
        f"synthetic: {data_path}\n"
        f"report:    {out_dir / 'report' / 'report.html'} (and report.json)"
    )
    return {"model": model_dir, "synthetic": data_path, "report": str(out_dir / "report")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.pipeline", description=__doc__)
    p.add_argument("--config", help="YAML/JSON pipeline config")
    p.add_argument("--demo", action="store_true", help="use the built-in UCI Adult data set, target 'income'")
    p.add_argument("--data", help="training data (CSV/Parquet file or folder)")
    p.add_argument("--target", help="target column for ML efficacy")
    p.add_argument("--model", choices=pipeline_models(), help="the model (default: chosen by the data's size and the time budget)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--time-budget", metavar="DURATION", help="training time limit: '90s', '10m', '1h' or seconds")
    p.add_argument("--holdout-fraction", type=float)
    p.add_argument("--num-workers", type=int, help="Ray Train workers")
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="train on GPUs (default: when the cluster has one now; say so on autoscaling clusters)")
    p.add_argument("--cpus-per-worker", type=float, help="CPUs reserved per training worker")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output folder (default: outputs/pipeline)")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = p.parse_args(argv)
    set_verbose(args.verbose)
    if not (args.demo or args.data or args.config):
        p.error("give --data, --demo or --config")
    try:
        cfg = load_config(
            PipelineJobConfig,
            args.config,
            {
                "data": "adult" if args.demo else args.data,
                "target": args.target,
                "model": args.model,
                "epochs": args.epochs,
                "time_budget": args.time_budget,
                "holdout_fraction": args.holdout_fraction,
                "seed": args.seed,
                "out": args.out,
                "scaling.num_workers": args.num_workers,
                "scaling.use_gpu": args.use_gpu,
                "scaling.cpus_per_worker": args.cpus_per_worker,
            },
        )
        data, target = cfg.data, cfg.target
        if data == "adult":
            from engine.data import ADULT_TARGET, adult_path

            data, target = adult_path(), target or ADULT_TARGET
        run_pipeline(
            data=data,
            out=cfg.out,
            model=cfg.model,
            epochs=cfg.epochs,
            time_budget=cfg.time_budget,
            target=target,
            holdout_fraction=cfg.holdout_fraction,
            seed=cfg.seed,
            num_workers=cfg.scaling.num_workers,
            use_gpu=cfg.scaling.use_gpu,
            cpus_per_worker=cfg.scaling.cpus_per_worker,
        )
    except SynthError as exc:
        print(f"jobs.pipeline: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
