"""The ``synth`` command: fit, sample, evaluate and inspect synthesizers of any modality.

Nothing here knows a modality: the model name a user gives (or the manifest of
a saved model) finds the modality in the registry, and the modality's front
door does the rest through the interface every front door has
(:class:`engine.core.synthesizer.Synthesizer`). A modality's own options (a
table's column kinds, an image's size) are the ones its front door declares
(``cli_options``); they are added to the parser as a group per modality, and
one given for a model of another modality is refused by name.

The helpers :func:`add_modality_options`, :func:`flag_values`,
:func:`wrong_modality_error`, :func:`check_format` and :func:`sharded_precision`
serve ``jobs/`` too.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.errors import InvalidOptionError, SynthError

if TYPE_CHECKING:
    from engine.core.registry import Modality
    from engine.core.synthesizer import FrontDoorOption, Synthesizer

# Commands whose parsers carry the modalities' declared options. Only these import the front doors
# (and with them torch) while the parser is built, so `synth --help` and `synth evaluate` stay quick.
MODALITY_COMMANDS = {"fit": ("init", "fit"), "sample": ("sample",)}
# Where a parser keeps the declared options it was given: flag -> (argparse dest, [(modality, option)]).
OPTIONS_DEFAULT = "_modality_options"


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


# ------------------------------------------------------------------ modality options
def add_modality_options(parser: argparse.ArgumentParser, stages: Collection[str]) -> None:
    """Add every modality's declared options of ``stages`` to ``parser``, in a group per modality.

    Each is added with no default, so that only the options a user gives reach
    :func:`given_options`. Two modalities declaring the same flag share it.
    """
    from engine.core.synthesizer import declared_options

    table: dict[str, tuple[str, list[tuple[Modality, FrontDoorOption]]]] = {}
    groups: dict[str, argparse._ArgumentGroup] = {}
    for modality, option in declared_options(stages):
        flag = option.cli_flag
        if flag in table:
            table[flag][1].append((modality, option))
            continue
        if modality.name not in groups:
            groups[modality.name] = parser.add_argument_group(f"{modality.name} options", f"for {', '.join(modality.models)}")
        dest = "option__" + flag.lstrip("-").replace("-", "_")
        kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": option.help.replace("%", "%%")}
        if option.metavar or not option.choices:
            kwargs["metavar"] = option.metavar or option.name.upper()
        if option.many and option.read_text is None:
            kwargs["action"] = "append"  # each occurrence read (and split at commas) by option.from_text later
        elif option.read_text is None and option.type in (int, float, str):
            # Simple values are read by argparse, which reports a bad one with the usage line.
            kwargs.update(type=option.type, choices=option.choices)
        try:
            groups[modality.name].add_argument(flag, **kwargs)
        except argparse.ArgumentError:
            raise SynthError(
                f"The {modality.name} modality declares the option {flag}, which {parser.prog} already has; "
                "its front door must name the option differently."
            ) from None
        table[flag] = (dest, [(modality, option)])
    parser.set_defaults(**{OPTIONS_DEFAULT: table})


def given_options(
    args: argparse.Namespace, synthesizer_class: type[Synthesizer], *, model: str | None, stages: Collection[str]
) -> dict[str, Any]:
    """The declared options given on the command line, by name, read as ``synthesizer_class`` declares them.

    An option that ``synthesizer_class`` does not declare (one of another
    modality's models) is an error naming the option and the modality that takes it.
    """
    table = getattr(args, OPTIONS_DEFAULT, {})
    own = {o.cli_flag: o for o in synthesizer_class.cli_options() if o.stage in stages}
    modality = synthesizer_class.modality_info()
    values: dict[str, Any] = {}
    for flag, (dest, owners) in table.items():
        if not hasattr(args, dest):
            continue
        option = own.get(flag)
        if option is None:
            raise wrong_modality_error(flag, [m for m, _ in owners], model, modality, sorted(own))
        values[option.name] = _read_flag(option, getattr(args, dest))
    return values


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The declared options given as flags, by their job-config keys (a job's config checks them against its model)."""
    table = getattr(args, OPTIONS_DEFAULT, {})
    return {
        owners[0][1].key: _read_flag(owners[0][1], getattr(args, dest))
        for dest, owners in table.values()
        if hasattr(args, dest)
    }


def _read_flag(option: FrontDoorOption, raw: Any) -> Any:
    """The value of ``option`` from what argparse kept: texts of a repeated list flag, one text, or a value it read."""
    if option.many and option.read_text is None:
        return [v for text in raw for v in option.from_text(text)]
    if isinstance(raw, str) and (option.read_text is not None or option.type not in (int, float, str)):
        return option.from_text(raw)
    return option.check(raw, option.cli_flag)


def wrong_modality_error(
    option: str, owners: Sequence[Modality], model: str | None, modality: Modality, takes: Sequence[str]
) -> InvalidOptionError:
    """The error for ``option`` given with ``model`` (None: the default), whose modality does not take it (``owners`` do)."""
    whose = "; ".join(f"the {m.name} modality ({', '.join(m.models)})" for m in owners) or "no modality"
    own = f"its options are {', '.join(takes)}" if takes else "it takes no modality options"
    which = f"{model!r} is a model" if model is not None else "no model was named, so the default is a model"
    return InvalidOptionError(
        f"{option} is an option of {whose}; {which} of the {modality.name} modality, which does not take it ({own})."
    )


def sharded_precision(synth: Synthesizer, sampling: dict[str, Any]) -> str | None:
    """The sharded sampler's ``precision`` from declared sampling options (checked already); others are refused.

    The sampler rebuilds the synthesizer in every actor and carries, of the
    sampling options, only the precision: it is the one attribute actors set.
    """
    sampling = dict(sampling)
    precision = sampling.pop("sampling_precision", None)
    if sampling:
        raise InvalidOptionError(
            f"Sharded sampling does not carry the sampling option(s) {', '.join(map(repr, sampling))} of "
            f"{type(synth).__name__} to its actors; sample in this process (a file output) to use them."
        )
    return precision


def conditions_from_args(synth: Synthesizer, conditions: Sequence[str] | None, label: str | None) -> Any:
    """``--condition`` strings (and ``--label X``, an alias of ``--condition label=X``) as ``synth`` takes them."""
    items = list(conditions or [])
    if label is not None:
        items.append(f"label={label}")
    return synth.conditions_from_strings(items) if items else None


def check_format(synth: Synthesizer, format: str | None, option: str = "--format") -> None:
    """Refuse, before any sampling, a format ``synth`` does not write (None lets it choose by the output)."""
    formats = synth.file_formats()
    if format is not None and format not in formats:
        raise InvalidOptionError(
            f"{option} {format!r} is not a format {synth.modality_info().name} models write; "
            f"they write {', '.join(map(repr, formats))}."
        )


# Without a model name, a fit trains tables: the table front door then chooses its model by the
# data's size and the time budget (its default without a model), as the Python API does.
DEFAULT_FIT_MODALITY = "table"


def fit_modality(model: str | None) -> Modality:
    """The modality that fits ``model``: the model's own, or for None the tables' (whose front door chooses)."""
    from engine.core.registry import get_modality, modality_for_model

    return get_modality(DEFAULT_FIT_MODALITY) if model is None else modality_for_model(model)


# ------------------------------------------------------------------ commands
def cmd_fit(args: argparse.Namespace) -> int:
    modality = fit_modality(args.model)
    front_door = modality.synthesizer_class()
    synth = front_door.fit_with_options(
        args.model,
        args.data,
        model_config=_json_object(args.model_config, "--model-config"),
        num_workers=args.workers,
        use_gpu=args.gpu,
        cpus_per_worker=args.cpus_per_worker,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        training={
            "checkpoint_every": args.checkpoint_every,
            "storage_path": args.storage_path,
            "run_name": args.run_name,
            "max_failures": args.max_failures,
            "show_progress": not args.quiet,
            # Only when given: a front door whose fit has no time budget is not offered one.
            **({"time_budget": args.time_budget} if args.time_budget is not None else {}),
        },
        options=given_options(args, front_door, model=args.model, stages=MODALITY_COMMANDS["fit"]),
    )
    where = synth.save(args.out)
    print(f"saved {synth.model} model to {where}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from engine.core.registry import load_synthesizer
    from engine.core.synthesizer import random_seed

    if (args.out is None) == (args.out_dir is None):
        raise SynthError("give exactly one of --out (one file, sampled in this process) and --out-dir (a folder of Parquet shards).")
    if args.out_dir is None and (args.rows_per_shard is not None or args.num_actors is not None):
        raise SynthError("--rows-per-shard and --num-actors apply to sharded sampling: give --out-dir instead of --out.")
    if args.out_dir is not None and args.format not in (None, "parquet"):
        raise SynthError(f"--out-dir writes Parquet shards; --format {args.format!r} applies to --out.")
    synth = load_synthesizer(args.model_dir)
    sampling = given_options(args, type(synth), model=synth.model, stages=MODALITY_COMMANDS["sample"])
    conditions = conditions_from_args(synth, args.condition, args.label)
    unit = synth.modality_info().unit
    if args.out_dir is not None:
        return _sample_sharded(args, synth, conditions, sharded_precision(synth, sampling), unit)
    check_format(synth, args.format)
    synth.set_sampling_options(sampling)
    table = synth.sample_table(args.rows, conditions=conditions, seed=random_seed() if args.seed is None else args.seed)
    synth.write_samples(table, args.out, args.format)
    # Counted here, not from the table: a sample may take several rows (a sequence in long format).
    print(f"wrote {args.rows} {unit}s to {args.out}")
    return 0


def _sample_sharded(args: argparse.Namespace, synth: Synthesizer, conditions: Any, precision: str | None, unit: str) -> int:
    """``synth sample --out-dir``: Parquet shards written by a Ray Data actor pool (resumable)."""
    from engine.batch.sharded import sample_to_parquet

    result = sample_to_parquet(
        args.model_dir, args.out_dir, num_rows=args.rows, conditions=conditions,
        seed=0 if args.seed is None else args.seed,
        rows_per_shard=100_000 if args.rows_per_shard is None else args.rows_per_shard,
        num_actors=args.num_actors, use_gpu=args.gpu, cpus_per_actor=args.cpus_per_actor, precision=precision,
    )
    print(f"wrote {result.num_rows} {unit}s to {args.out_dir} in {result.num_shards} shards "
          f"({len(result.written_shards)} written, {len(result.skipped_shards)} already complete)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from engine.core.registry import load_synthesizer

    print(json.dumps(load_synthesizer(args.model_dir).describe(), indent=2, default=str))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """``synth generate spec.yaml`` or ``synth generate --prompt ... --data f.csv``: see engine/requirements."""
    from engine.requirements.run import generate

    if (args.spec is None) == (args.prompt is None):
        raise SynthError("give a spec file or --prompt (not both).")
    if args.spec is not None:
        spec: Any = args.spec
        if args.dry_run:
            from engine.requirements.spec import load_spec

            print(load_spec(args.spec).to_yaml(), end="")
            return 0
    else:
        from engine.requirements.interpreter import interpret

        if (args.data is None) == (args.model_dir is None):
            raise SynthError("with --prompt give --data (to train on) or --model-dir (a saved model), not both.")
        if args.model_dir is not None:
            from engine.core.registry import load_synthesizer

            schema: Any = load_synthesizer(args.model_dir)
        else:
            schema = args.data
        reading = interpret(args.prompt, schema)
        for note in reading.notes:
            print(f"note: {note}", file=sys.stderr)
        spec = reading.to_spec(
            data=args.data, model_path=args.model_dir, model=args.model, seed=args.seed,
            output={"path": args.out} if args.out else None,
        )
        if args.dry_run or args.out is None:
            print(spec.to_yaml(), end="")
            if not args.dry_run:
                print("(no --out: nothing generated; save this spec or add --out)", file=sys.stderr)
            return 0
    result = generate(spec)
    unit = result.card["rows"]["unit"]
    print(f"wrote {result.num_rows} {unit}s to {', '.join(result.files)}")
    print(f"data card: {result.card_path}")
    print(f"reproduce with: {result.reproduce}")
    return 0


def _model_names() -> list[str]:
    from engine.core.registry import REGISTRY

    return list(REGISTRY.model_names())


def build_parser(modality_options: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``synth`` parser; ``modality_options`` names the commands given the modalities' options (default: all)."""
    with_options = set(MODALITY_COMMANDS) if modality_options is None else set(modality_options)
    parser = argparse.ArgumentParser(prog="synth", description="Synthetic data engine: fit, sample, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train a synthesizer and save it")
    fit.add_argument("data", help="training data, as the model's modality reads it: for tables a CSV or Parquet file, or a "
                     "folder of Parquet files; for images a folder of images (class sub-folders give labels), an .npz or Parquet with image bytes")
    fit.add_argument("--model", default=None, choices=_model_names(),
                     help="the model; its modality follows from it (default: a table model chosen by the data's size and "
                     "--time-budget, as the Python API chooses; the README states the rule)")
    fit.add_argument("--out", required=True, help="folder (or cloud URI) to save the model in")
    fit.add_argument("--epochs", type=int, default=None, help="training epochs (default: the model's, 300 for ctgan/tvae/tabddpm)")
    fit.add_argument("--batch-size", type=int, default=None, help="samples per step per worker (default: the model's)")
    fit.add_argument(
        "--time-budget", default=None, metavar="DURATION",
        help="stop training when this much time is spent ('90s', '10m', '1h' or seconds), keeping the best "
        "validated weights (tables: ctgan, tvae, tabddpm)",
    )
    fit.add_argument("--seed", type=int, default=0, help="random seed for initialisation and batch order (default: 0)")
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
    if "fit" in with_options:
        add_modality_options(fit, MODALITY_COMMANDS["fit"])
    fit.set_defaults(func=cmd_fit)

    sample = sub.add_parser("sample", help="generate samples (rows, images, ...) from a saved synthesizer")
    sample.add_argument("model_dir", help="folder (or cloud URI) of a saved model")
    sample.add_argument("--rows", type=int, required=True, help="number of samples (rows, images, ...) to generate (exact)")
    sample.add_argument("--condition", action="append",
                        help="NAME=VALUE, or NAME>=X / <=X / >X / <X; repeatable. Tables: a column's category or range "
                             "(income=>50K, age>=30); images: label=CLASS")
    sample.add_argument("--label", help="alias of --condition label=LABEL (image models: the class of every image)")
    sample.add_argument("--seed", type=int, default=None,
                        help="random seed; the same seed gives the same samples (default: random; 0 with --out-dir, so a re-run resumes)")
    sample.add_argument("--format", default=None,
                        help="output format, one the model's modality writes: tables parquet, csv or json (default: by "
                             "the --out extension); images parquet (PNG bytes) or folder (PNG files; default: parquet)")
    sample.add_argument("--out", help="output: for tables a .parquet, .csv, .csv.gz or .json file; for images a folder")
    sample.add_argument("--out-dir", help="instead of --out: a folder (or s3:// / gs:// URI) of Parquet shards written by a "
                        "Ray Data actor pool; re-running after an interruption writes only the missing shards")
    sample.add_argument("--rows-per-shard", type=int, help="with --out-dir: samples per Parquet shard (default: 100000)")
    sample.add_argument("--num-actors", type=int, help="with --out-dir: sampling actors (default: one per free CPU)")
    sample.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                        help="with --out-dir: give each actor a GPU (default: when the cluster has one now)")
    sample.add_argument("--cpus-per-actor", type=float, default=1, help="with --out-dir: CPUs reserved by each actor (default: 1)")
    if "sample" in with_options:
        add_modality_options(sample, MODALITY_COMMANDS["sample"])
    sample.set_defaults(func=cmd_sample)

    info = sub.add_parser("info", help="print a saved model's card (modality, schema or shape, training summary) as JSON")
    info.add_argument("model_dir", help="folder (or cloud URI) of a saved model")
    info.set_defaults(func=cmd_info)

    gen = sub.add_parser("generate", help="make a data set from a requirement spec (YAML/JSON) or a plain-language --prompt, "
                         "with a data card")
    gen.add_argument("spec", nargs="?", help="requirement spec file (YAML or JSON; a dataset_card.json also works)")
    gen.add_argument("--prompt", help='the request in words, e.g. "10k rows where fraud = 1 and age between 30 and 50"')
    gen.add_argument("--data", help="with --prompt: the source data to train on (and read column names and values from)")
    gen.add_argument("--model-dir", help="with --prompt: a saved model to sample from instead of training")
    gen.add_argument("--model", help="with --prompt: the model to train (default: the modality's default)")
    gen.add_argument("--out", help="with --prompt: output file (.parquet, .csv, .json) or folder of Parquet shards")
    gen.add_argument("--seed", type=int, default=None, help="with --prompt: random seed (default: 0)")
    gen.add_argument("--dry-run", action="store_true", help="print the spec the prompt gives (YAML) and stop")
    gen.set_defaults(func=cmd_generate)

    _add_optional_commands(sub)
    from engine.core.runtime import VERBOSE_HELP

    for command_parser in sub.choices.values():
        command_parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    return parser


def _add_optional_commands(sub) -> None:
    """Commands whose layers are optional imports (evaluation)."""
    ev = sub.add_parser("evaluate", help="compare a synthetic table with the real one; write report.json and report.html")
    ev.add_argument("real", help="real data (CSV/Parquet file or Parquet folder)")
    ev.add_argument("synthetic", help="synthetic data (CSV/Parquet file or Parquet folder)")
    ev.add_argument("--holdout", help="real rows the synthesizer never saw (for ML efficacy and privacy)")
    ev.add_argument("--target", help="target column for ML efficacy")
    ev.add_argument("--out", required=True, help="folder for report.json and report.html")
    ev.add_argument("--model-dir", help="a saved model: its modality's evaluation reads both data sets as the model was "
                    "trained (time series: its entity, time and static columns); without it the data are tables")
    ev.add_argument("--seed", type=int, default=None, help="with --model-dir: seed of the evaluation's own randomness (default: 0)")
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
    if args.model_dir is not None:
        report = evaluate_with_model(args.model_dir, args.real, args.synthetic, target=args.target, holdout=args.holdout,
                                     seed=args.seed)
    else:
        from engine.evaluation import evaluate_tables

        report = evaluate_tables(args.real, args.synthetic, holdout=args.holdout, target=args.target)
    report.save(args.out)
    print(report.summary())
    print(f"report written to {Path(args.out) / 'report.html'} and report.json")
    return 0


def evaluate_with_model(model_dir: str, real: Any, synthetic: Any, *, target: str | None = None, holdout: Any = None,
                        seed: int | None = None) -> Any:
    """The report of a saved model's front door (``Synthesizer.evaluate``, which defaults to ``Modality.evaluate``).

    Options are passed only when given, each under the name the front door's ``evaluate``
    gives it; one it does not take is refused by name.
    """
    from engine.core.registry import load_synthesizer
    from engine.core.synthesizer import _named_parameters

    synth = load_synthesizer(model_dir)
    names, _ = _named_parameters(type(synth).evaluate)
    options: dict[str, Any] = {}
    for flag, value, candidates in (("--target", target, ("target",)), ("--holdout", holdout, ("holdout_data", "holdout")),
                                    ("--seed", seed, ("seed",))):
        if value is None:
            continue
        name = next((c for c in candidates if c in names), None)
        if name is None:
            raise InvalidOptionError(f"{flag} does not apply to evaluating a {synth.modality} model ({synth.model}).")
        options[name] = value
    return synth.evaluate(real, synthetic, **options)


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
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv else None
    try:
        # Only the command being run gets the modalities' options (importing their front doors).
        parser = build_parser(modality_options=[command] if command in MODALITY_COMMANDS else [])
    except SynthError as exc:  # a plugin modality that cannot be read (SYNTH_MODALITIES, entry points)
        print(f"synth: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if getattr(args, "verbose", False):
        from engine.core.runtime import set_verbose

        set_verbose()
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
