"""The ``synth`` command: fit, sample, evaluate and inspect synthesizers."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from engine.core.errors import SynthError


def _write_table(table, out: str) -> None:
    """Write CSV or Parquet by extension, through a temporary file so a failure leaves nothing half-written."""
    path = Path(out)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".csv.gz") else path.suffix
    if suffix not in (".parquet", ".csv", ".csv.gz"):
        raise SynthError(f"--out {out!r}: the output file must end in .parquet, .csv or .csv.gz.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, compression="gzip" if suffix == ".csv.gz" else None)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    """The JSON object given to ``option``; a clear one-line error when it is not one."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SynthError(f"{option} must be a JSON object such as '{{\"embedding_dim\": 64}}'; got {text!r} ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(value, dict):
        raise SynthError(f"{option} must be a JSON object such as '{{\"embedding_dim\": 64}}'; got {type(value).__name__} {text!r}.")
    return value


def _parse_conditions(synth, items: list[str] | None) -> dict[str, Any] | None:
    from engine.tabular.requirements.conditions import coerce_text_value, parse_condition_arg
    from engine.tabular.schema.kinds import ColumnKind

    if not items:
        return None
    raw: dict[str, Any] = {}
    for item in items:
        column, value = parse_condition_arg(item)
        if column in synth.schema_ and synth.schema_[column].kind.is_discrete:
            value = coerce_text_value(column, value, synth.codec_.categories(column))
        elif column in synth.schema_ and synth.schema_[column].kind == ColumnKind.INTEGER and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                pass
        raw[column] = value
    return raw


def _fit_images(args: argparse.Namespace) -> int:
    from engine.images.synthesizer import ImageSynthesizer

    synth = ImageSynthesizer(
        args.model,
        image_size=args.image_size,
        channels=args.channels,
        model_config=_json_object(args.model_config, "--model-config"),
        num_workers=args.workers,
        use_gpu=args.gpu,
        cpus_per_worker=args.cpus_per_worker,
        checkpoint_every=args.checkpoint_every,
        storage_path=args.storage_path,
        run_name=args.run_name,
        max_failures=args.max_failures,
        show_progress=not args.quiet,
    )
    synth.fit(args.data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    where = synth.save(args.out)
    print(f"saved {args.model} model to {where}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from engine.core.registry import IMAGE_MODELS
    from engine.tabular.synthesizer import TabularSynthesizer

    if args.model in IMAGE_MODELS:
        return _fit_images(args)

    constraints = None
    if args.constraints:
        constraints = _load_document(args.constraints).get("constraints", [])
    synth = TabularSynthesizer(
        model=args.model,
        model_config=_json_object(args.model_config, "--model-config"),
        constraints=constraints,
        num_workers=args.workers,
        use_gpu=args.gpu,
        cpus_per_worker=args.cpus_per_worker,
    )
    synth.fit(
        args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        categorical_columns=_split(args.categorical),
        continuous_columns=_split(args.continuous),
        metadata=args.metadata,
        checkpoint_every=args.checkpoint_every,
        storage_path=args.storage_path,
        run_name=args.run_name,
        max_failures=args.max_failures,
        show_progress=not args.quiet,
    )
    where = synth.save(args.out)
    print(f"saved {args.model} model to {where}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from engine.images.synthesizer import ImageSynthesizer
    from engine.images.io import save_dataset
    from engine.core.registry import load_synthesizer

    if (args.out is None) == (args.out_dir is None):
        raise SynthError("give exactly one of --out (one file, sampled in this process) and --out-dir (a folder of Parquet shards).")
    if args.out_dir is None and (args.rows_per_shard is not None or args.num_actors is not None):
        raise SynthError("--rows-per-shard and --num-actors apply to sharded sampling: give --out-dir instead of --out.")
    synth = load_synthesizer(args.model_dir)
    if args.precision is not None:
        if isinstance(synth, ImageSynthesizer):
            raise SynthError("--precision applies to table models (ctgan, tvae); image models sample in float32.")
        synth.sampling_precision = args.precision
    if args.out_dir is not None:
        return _sample_sharded(args, synth)
    if isinstance(synth, ImageSynthesizer):
        if args.condition:
            raise SynthError("--condition applies to tables; ask an image model for a class with --label.")
        result = synth.sample(args.rows, labels=args.label, seed=args.seed)
        fmt = "folder" if args.format == "folder" else "parquet"
        save_dataset(result, args.out, format=fmt)
        print(f"wrote {len(result)} images to {args.out} ({fmt})")
        return 0
    if args.label is not None:
        raise SynthError("--label applies to image models; ask a table model with --condition COLUMN=VALUE.")
    rows = synth.sample(args.rows, conditions=_parse_conditions(synth, args.condition), seed=args.seed)
    _write_table(rows, args.out)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _sample_sharded(args: argparse.Namespace, synth: Any) -> int:
    """``synth sample --out-dir``: Parquet shards written by a Ray Data actor pool (resumable)."""
    from engine.images.synthesizer import ImageSynthesizer
    from engine.batch.sharded import sample_to_parquet

    if isinstance(synth, ImageSynthesizer):
        if args.condition:
            raise SynthError("--condition applies to tables; ask an image model for a class with --label.")
        conditions = args.label
    else:
        if args.label is not None:
            raise SynthError("--label applies to image models; ask a table model with --condition COLUMN=VALUE.")
        conditions = _parse_conditions(synth, args.condition)
    result = sample_to_parquet(
        args.model_dir, args.out_dir, num_rows=args.rows, conditions=conditions,
        seed=0 if args.seed is None else args.seed,
        rows_per_shard=100_000 if args.rows_per_shard is None else args.rows_per_shard,
        num_actors=args.num_actors, use_gpu=args.gpu, cpus_per_actor=args.cpus_per_actor, precision=args.precision,
    )
    print(f"wrote {result.num_rows} rows to {args.out_dir} in {result.num_shards} shards "
          f"({len(result.written_shards)} written, {len(result.skipped_shards)} already complete)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from engine.images.synthesizer import ImageSynthesizer
    from engine.core.registry import load_synthesizer

    synth = load_synthesizer(args.model_dir)
    if isinstance(synth, ImageSynthesizer):
        shape = synth._require_fitted()[1].layout
        described = {"image": {"height": shape.height, "width": shape.width, "channels": shape.channels},
                     "classes": list(shape.class_names)}
    else:
        described = {"columns": [c.to_dict() for c in synth.schema_.columns]}
    info = {
        "model": synth.model,
        **described,
        "training": synth.training_options_,
        "epochs_trained": len(synth.history_),
        "last_epoch": synth.history_[-1] if synth.history_ else None,
    }
    print(json.dumps(info, indent=2, default=str))
    return 0


def _load_document(path: str) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise SynthError(f"The requirements file {path!r} does not exist.")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SynthError(f"The requirements file {path!r} is not valid YAML/JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SynthError(f"The requirements file {path!r} must hold a mapping (e.g. 'constraints: [...]').")
    return doc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synth", description="Synthetic data engine: fit, sample, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train a synthesizer on a table and save it")
    fit.add_argument("data", help="training data: a CSV or Parquet file, or a folder of Parquet files; "
                     "for image models a folder of images (class sub-folders give labels), an .npz or Parquet with image bytes")
    fit.add_argument("--model", default="ctgan", choices=["ctgan", "tvae", "gaussian_copula", "dcgan", "wgan_gp", "ddpm"],
                     help="model family (default: ctgan)")
    fit.add_argument("--image-size", type=int, help="image models: resize images to this square size (default: keep)")
    fit.add_argument("--channels", type=int, choices=[1, 3], help="image models: 1 grey or 3 colour (default: keep)")
    fit.add_argument("--out", required=True, help="folder (or cloud URI) to save the model in")
    fit.add_argument("--epochs", type=int, default=None, help="training epochs (default: the model's, 300 for ctgan/tvae)")
    fit.add_argument("--batch-size", type=int, default=None, help="rows per step per worker (default: the model's)")
    fit.add_argument("--seed", type=int, default=0, help="random seed for initialisation and batch order (default: 0)")
    fit.add_argument("--categorical", action="append", help="column(s) to model as categorical, comma-separated; repeatable")
    fit.add_argument("--continuous", action="append", help="column(s) to model as continuous, comma-separated; repeatable")
    fit.add_argument("--metadata", help="JSON file overriding column kinds: {\"columns\": {\"age\": {\"kind\": \"integer\"}}}")
    fit.add_argument("--constraints", help="YAML/JSON file with a 'constraints' list (bounds, integer, inequality, fixed_combinations)")
    fit.add_argument("--model-config", help="model hyperparameters as a JSON object, e.g. '{\"embedding_dim\": 64}'")
    fit.add_argument("--workers", type=int, default=1, help="Ray Train workers for data-parallel training (default: 1)")
    fit.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None, help="train on GPUs (default: when available)")
    fit.add_argument("--cpus-per-worker", type=float, default=None, help="CPUs reserved per training worker (default: the cluster's CPUs shared among the workers)")
    fit.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints (default: 10)")
    fit.add_argument("--storage-path", help="where checkpoints go: a folder or s3:// / gs:// URI (default: ~/.cache/synth_engine/runs "
                     "for a named run, a temporary folder otherwise; a multi-node cluster needs a shared path or URI)")
    fit.add_argument("--run-name", help="name of the training run; the same name resumes from its last checkpoint")
    fit.add_argument("--max-failures", type=int, default=0, help="worker failures to retry from the last checkpoint (default: 0)")
    fit.add_argument("--quiet", action="store_true", help="do not print the losses after every epoch")
    fit.set_defaults(func=cmd_fit)

    sample = sub.add_parser("sample", help="generate rows (or images) from a saved synthesizer")
    sample.add_argument("model_dir", help="folder (or cloud URI) of a saved model")
    sample.add_argument("--rows", type=int, required=True, help="number of rows (or images) to generate (exact)")
    sample.add_argument("--condition", action="append", help="COLUMN=VALUE, or COLUMN>=X / <=X / >X / <X; repeatable")
    sample.add_argument("--seed", type=int, default=None,
                        help="random seed; the same seed gives the same rows (default: random; 0 with --out-dir, so a re-run resumes)")
    sample.add_argument("--label", help="image models: the class of every image (default: the training class mix)")
    sample.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default=None,
                        help="table models (ctgan, tvae): numeric precision of generation; 'auto' uses bfloat16 on CPUs "
                             "that multiply it natively (default: the precision saved with the model, 'auto' unless set)")
    sample.add_argument("--format", choices=["parquet", "folder"], default="parquet",
                        help="image models: Parquet with PNG bytes, or an image folder (default: parquet)")
    sample.add_argument("--out", help="output file: .parquet, .csv or .csv.gz; for image models a folder")
    sample.add_argument("--out-dir", help="instead of --out: a folder (or s3:// / gs:// URI) of Parquet shards written by a "
                        "Ray Data actor pool; re-running after an interruption writes only the missing shards")
    sample.add_argument("--rows-per-shard", type=int, help="with --out-dir: rows per Parquet shard (default: 100000)")
    sample.add_argument("--num-actors", type=int, help="with --out-dir: sampling actors (default: one per free CPU)")
    sample.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                        help="with --out-dir: give each actor a GPU (default: when the cluster has one now)")
    sample.add_argument("--cpus-per-actor", type=float, default=1, help="with --out-dir: CPUs reserved by each actor (default: 1)")
    sample.set_defaults(func=cmd_sample)

    info = sub.add_parser("info", help="print a saved model's schema and training summary")
    info.add_argument("model_dir", help="folder (or cloud URI) of a saved model")
    info.set_defaults(func=cmd_info)

    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub) -> None:
    """Commands whose layers are optional imports (evaluation)."""
    ev = sub.add_parser("evaluate", help="compare a synthetic table with the real one; write report.json and report.html")
    ev.add_argument("real", help="real data (CSV/Parquet file or Parquet folder)")
    ev.add_argument("synthetic", help="synthetic data (CSV/Parquet file or Parquet folder)")
    ev.add_argument("--holdout", help="real rows the synthesizer never saw (for ML efficacy and privacy)")
    ev.add_argument("--target", help="target column for ML efficacy")
    ev.add_argument("--out", required=True, help="folder for report.json and report.html")
    ev.set_defaults(func=cmd_evaluate)

    sv = sub.add_parser("serve", help="serve the models of a store over HTTP (Ray Serve) until interrupted")
    sv.add_argument("--models-dir", required=True, help="the model store: a folder (or URI) with one saved model per sub-folder")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    sv.add_argument("--port", type=int, default=8000, help="HTTP port (default: 8000)")
    sv.add_argument("--api-key-env", default="SYNTH_API_KEY", help="environment variable holding the API key (default: SYNTH_API_KEY)")
    sv.add_argument("--api-key-file", help="file holding the API key, if the variable is unset")
    sv.add_argument("--no-auth", action="store_true", help="serve without an API key (local experiments only)")
    sv.add_argument("--data-root", help="local folder /v1/evaluate may read tables from by reference")
    sv.add_argument("--replicas", type=int, default=1, help="generation replicas (default: 1)")
    sv.add_argument("--gpu", action="store_true", help="give each generation replica a GPU")
    sv.set_defaults(func=cmd_serve)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.evaluation import evaluate_tables

    report = evaluate_tables(args.real, args.synthetic, holdout=args.holdout, target=args.target)
    report.save(args.out)
    print(report.summary())
    print(f"report written to {Path(args.out) / 'report.html'} and report.json")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import time

    from pydantic import ValidationError
    from ray import serve

    from engine.core.runtime import ray_session
    # The one place the library reaches the serving layer: this command only starts it.
    from serve_apps.app import build_app
    from serve_apps.config import AppArgs

    try:
        app_args = AppArgs(
            models_dir=args.models_dir,
            data_root=args.data_root,
            auth=not args.no_auth,
            api_key_env=args.api_key_env,
            api_key_file=args.api_key_file,
            generator={"num_replicas": args.replicas, "num_cpus": 0.75, "num_gpus": 1 if args.gpu else 0},
        )
    except ValidationError as exc:
        raise SynthError(f"invalid option: {exc}") from None
    app = build_app(app_args)  # checks the key and the folders before Ray starts
    with ray_session():
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(app, name="synth", route_prefix="/")
        auth = "off" if args.no_auth else f"on (Bearer key from {args.api_key_env})"
        print(f"serving {args.models_dir} at http://{args.host}:{args.port} (docs at /docs, auth {auth}); Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        finally:
            serve.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SynthError as exc:
        print(f"synth {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
