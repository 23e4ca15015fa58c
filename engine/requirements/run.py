"""``generate(spec)``: make the data set a requirement spec describes, and its data card.

Train (or load) -> sample -> evaluate -> write, for any modality:

1. the model: loaded from ``model_path``, or trained on ``data`` with the
   spec's model, hyperparameters, epochs, constraints and seed;
2. the samples: conditions on every sample; a mixture (and set conditions,
   ``in``/``not_in``) drawn group by group with the modality's conditional
   sampling (shares the spec leaves open follow the model's own proportions,
   measured on a pilot sample), then shuffled with the seed;
3. anonymized columns replaced by pseudonyms;
4. the evaluation against the source data, with per-class fidelity for the
   mixture's column;
5. the output file (or a folder of Parquet shards, read as one data set),
   then ``dataset_card.json`` and a README section beside it: the spec, the
   model digest and parameters, seed, versions, row counts, the SHA-256 of
   every output file and the evaluation summary.

The same spec and seed give the same bytes, so DVC or git-lfs can track the
output; the card says the command that makes it again.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from engine.core.errors import SynthError
from engine.core.mixtures import Group, combine, sample_groups
from engine.requirements.spec import InvalidSpecError, RequirementSpec, check_privacy_supported, load_spec

CARD_NAME = "dataset_card.json"
CARD_VERSION = 1
PILOT_ROWS = 2000  # samples drawn to measure the model's own proportions of the values a spec leaves open


@dataclass
class GenerateResult:
    """What a run made: the samples, the files written, the data card and the command that makes them again."""

    table: pa.Table
    card: dict[str, Any]
    files: list[str] = field(default_factory=list)
    card_path: str | None = None
    reproduce: str | None = None

    @property
    def num_rows(self) -> int:
        return int(self.card["rows"]["total"])


def generate(spec: Any, *, show_progress: bool = False) -> GenerateResult:
    """Run a requirement spec (a :class:`RequirementSpec`, dict, or YAML/JSON path or text): see the module docs."""
    spec_path = str(spec) if isinstance(spec, (str, os.PathLike)) and Path(str(spec)).suffix in (".yaml", ".yml", ".json") else None
    spec = load_spec(spec)
    check_privacy_supported(spec)
    synth, source = _synthesizer(spec, show_progress)
    groups = plan_groups(synth, spec)
    table = sample_groups(synth, groups, seed=spec.seed) if len(groups) > 1 else _one_group(synth, groups[0], spec.seed)
    evaluation = _evaluate(synth, spec, table)
    table = anonymize(table, spec.anonymize, spec.seed)
    unit = synth.modality_info().unit
    card: dict[str, Any] = {
        "dataset_card_version": CARD_VERSION,
        "spec": spec.to_dict(),
        "model": {
            "name": synth.model,
            "modality": synth.modality,
            "source": source,
            "digest_sha256": _model_digest(synth, spec),
            "parameters": _jsonable(synth._saved_model_config()),
            "training": _jsonable(synth.training_options_),
        },
        "seed": spec.seed,
        "versions": _versions(),
        "rows": {
            "unit": unit,
            "total": table.num_rows,
            "groups": [{"conditions": _jsonable(dict(g.conditions)), "count": g.count} for g in groups],
        },
        "evaluation": evaluation,
    }
    result = GenerateResult(table=table, card=card)
    if spec.output is None:
        return result
    files, card_dir = _write_output(synth, table, spec)
    out = Path(spec.output.path)
    card["files"] = [
        {"path": os.path.relpath(f, card_dir), "sha256": sha256_file(f), "bytes": os.path.getsize(f)} for f in files
    ]
    card_path = card_dir / CARD_NAME
    reproduce = f"synth generate {spec_path}" if spec_path else f"synth generate {card_path}"
    card["reproduce"] = reproduce
    _atomic_write(card_path, json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")
    _write_readme_section(card_dir / "README.md", out.name, card)
    result.files, result.card_path, result.reproduce = [str(f) for f in files], str(card_path), reproduce
    return result


# ------------------------------------------------------------------ the model
def _synthesizer(spec: RequirementSpec, show_progress: bool):
    from engine.core.registry import REGISTRY, get_modality, load_synthesizer, modality_for_model

    if spec.model_path is not None:
        if spec.constraints:
            raise InvalidSpecError(
                "The spec gives constraints and a saved model: constraints are learned when training, so the saved model "
                "keeps its own. Give 'data' to train with these constraints, or remove them."
            )
        synth = load_synthesizer(spec.model_path)
        if spec.model is not None and spec.model != synth.model:
            raise InvalidSpecError(f"The spec names model {spec.model!r}, but {spec.model_path!r} holds a {synth.model!r} model.")
        return synth, f"loaded from {spec.model_path}"
    if spec.model is not None:
        modality = modality_for_model(spec.model)
        if spec.modality is not None and spec.modality != modality.name:
            raise InvalidSpecError(f"The model {spec.model!r} is a {modality.name} model, not a {spec.modality} one.")
        model = spec.model
    else:
        # No model named: the modality's (default: the first the engine knows) front-door default, or None when
        # that front door chooses at fit (tables: by the data's size).
        modality = get_modality(spec.modality) if spec.modality else next(iter(REGISTRY.all().values()))
        model = _default_model(modality)
    front_door = modality.synthesizer_class()
    options: dict[str, Any] = {}
    if spec.constraints:
        declared = {o.name for o in front_door.cli_options()}
        if "constraints" not in declared:
            raise InvalidSpecError(f"The {modality.name} modality takes no constraints; remove 'constraints' from the spec.")
        options["constraints"] = [c.model_dump(exclude_none=True, mode="json") for c in spec.constraints]
    synth = front_door.fit_with_options(
        model, spec.data, model_config=spec.hyperparameters, epochs=spec.epochs, seed=spec.seed,
        training={"show_progress": show_progress}, options=options,
    )
    return synth, f"trained on {spec.data}"


def _default_model(modality) -> str | None:
    """The front door's default model; None when the front door chooses one at fit (tables: by the data's size)."""
    import inspect

    default = inspect.signature(modality.synthesizer_class().__init__).parameters.get("model")
    if default is not None and (default.default is None or default.default in modality.models):
        return default.default
    return next(iter(modality.models))


def _model_digest(synth, spec: RequirementSpec) -> str:
    from engine.batch.sharded import model_digest

    if spec.model_path is not None:
        return model_digest(spec.model_path, recursive=True)
    with tempfile.TemporaryDirectory(prefix="synth-digest-") as tmp:
        synth.save(Path(tmp) / "model")
        return model_digest(str(Path(tmp) / "model"), recursive=True)


# ------------------------------------------------------------------ sampling
def plan_groups(synth, spec: RequirementSpec) -> list[Group]:
    """The groups of samples the spec asks for: its conditions, crossed with each mixture / set column's values."""
    raw = spec.engine_conditions()
    base = synth.coerce_conditions(raw) or {}
    if base:
        synth.parse_conditions(base)  # refuse a bad condition before any sampling
    if not isinstance(base, Mapping):  # a bare class label (images, audio): groups keep {column: value}
        base = dict(raw)
    columns: dict[str, dict[Any, float]] = {}
    pilot: pa.Table | None = None

    def proportions(column: str, allowed: list[Any]) -> dict[Any, float]:
        nonlocal pilot
        if pilot is None:
            pilot = synth.sample_table(PILOT_ROWS, conditions=base or None, seed=spec.seed, stream=0)
        counts = synth.count_values(pilot, column)
        shares = {v: float(counts.get(v, 0)) for v in allowed}
        total = sum(shares.values())
        return {v: s / total for v, s in shares.items()} if total > 0 else {v: 1 / len(allowed) for v in allowed}

    for column, shares in spec.mixture.items():
        labels = {_label(synth, column, key): share for key, share in shares.items()}
        rest = 1 - sum(labels.values())
        if rest > 1e-9:
            others = [v for v in synth.condition_values(column) if v not in labels]
            if not others:
                raise InvalidSpecError(f"The mixture of {column!r} sums to {1 - rest:g} and lists every value: the shares must add up to 1.")
            labels.update({v: rest * p for v, p in proportions(column, others).items()})
        columns[column] = labels
    for column, cond in spec.set_conditions().items():
        known = synth.condition_values(column)
        if cond.in_ is not None:
            allowed = [_label(synth, column, v) for v in cond.in_]
        else:
            excluded = [_label(synth, column, v) for v in cond.not_in]
            allowed = [v for v in known if v not in excluded]
            if not allowed:
                raise InvalidSpecError(f"The condition on {column!r} excludes every value it has.")
        unknown = [v for v in allowed if v not in known]
        if unknown:
            raise InvalidSpecError(f"{unknown[0]!r} is not a value of {column!r}; its values are: {', '.join(map(repr, known))}.")
        columns[column] = proportions(column, allowed)
    if not columns:
        return [Group(base, spec.num_rows)]
    return combine(spec.num_rows, base, columns)


def _label(synth, column: str, key: Any) -> Any:
    """A value as the spec wrote it (mixture keys are text) matched to the model's own label."""
    coerced = synth.coerce_conditions({column: key})
    # A front door whose one condition is a class label (images, audio) answers with the bare label.
    coerced = coerced.get(column, key) if isinstance(coerced, Mapping) else key if coerced is None else coerced
    known = synth.condition_values(column)
    if coerced in known:
        return coerced
    for v in known:
        if str(v).strip().lower() == str(key).strip().lower():
            return v
    raise InvalidSpecError(f"{key!r} is not a value of {column!r}; its values are: {', '.join(map(repr, known))}.")


def _one_group(synth, group: Group, seed: int) -> pa.Table:
    return synth.sample_table(group.count, conditions=dict(group.conditions) or None, seed=seed, stream=1)


def anonymize(table: pa.Table, columns: list[str], seed: int) -> pa.Table:
    """``columns`` replaced by pseudonyms (``column-<10 hex>``): the same value gets the same pseudonym within a data set."""
    for column in columns:
        if column not in table.column_names:
            raise InvalidSpecError(
                f"The spec anonymizes column {column!r}, which the samples do not have; they have {', '.join(map(repr, table.column_names))}."
            )
        values = table.column(column).to_pylist()
        pseudo = [None if v is None else f"{column}-{hashlib.sha256(f'{seed}:{column}:{v}'.encode()).hexdigest()[:10]}" for v in values]
        table = table.set_column(table.column_names.index(column), column, pa.array(pseudo, pa.string()))
    return table


# ------------------------------------------------------------------ evaluation
def _evaluate(synth, spec: RequirementSpec, table: pa.Table) -> dict[str, Any]:
    if not spec.evaluation.enabled:
        return {"skipped": "evaluation disabled in the spec"}
    if spec.data is None:
        return {"skipped": "no source data in the spec to compare with (the model was loaded)"}
    samples = synth.from_table(table)
    out: dict[str, Any] = {}
    try:
        if not spec.evaluation.full_report:
            raise _Skip
        options = {"target": spec.evaluation.target} if spec.evaluation.target else {}
        report = synth.evaluate(spec.data, samples, **options)
        out["summary"] = report.summary() if hasattr(report, "summary") else str(report)
        scores = report.to_dict() if hasattr(report, "to_dict") else {}
        out["scores"] = {k: v for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    except _Skip:
        out["report"] = "not asked for (evaluation.full_report is false)"
    except SynthError as exc:
        out["error"] = str(exc)
    column = spec.evaluation.per_class or next(iter([*spec.mixture, *spec.set_conditions()]), None)
    if column is not None:
        try:
            out["per_class_fidelity"] = {"column": column, "scores": synth.class_fidelity(spec.data, samples, column)}
        except SynthError as exc:
            out["per_class_fidelity"] = {"column": column, "error": str(exc)}
    return _jsonable(out)


class _Skip(Exception):
    pass


# ------------------------------------------------------------------ writing
def _write_output(synth, table: pa.Table, spec: RequirementSpec) -> tuple[list[Path], Path]:
    """Write the samples; return the files written and the folder the card goes in (the output's parent)."""
    output = spec.output
    out = Path(output.path)
    sharded = output.shards > 1 or (out.suffix == "" and output.format in (None, "parquet"))
    if not sharded:
        synth.write_samples(table, str(out), output.format)
        files = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else [out]
        return files, out.parent
    if output.format not in (None, "parquet"):
        raise InvalidSpecError(f"A sharded output is a folder of Parquet files; the spec asks for format {output.format!r}.")
    if out.exists() and any(not p.name.startswith("part-") for p in out.iterdir()):
        raise InvalidSpecError(f"The output folder {str(out)!r} holds files other than this data set's shards; choose another path.")
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        bounds = np.linspace(0, table.num_rows, output.shards + 1).round().astype(int)
        for i in range(output.shards):
            pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), tmp / f"part-{i:05d}.parquet")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return sorted(out.glob("part-*.parquet")), out.parent


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_readme_section(readme: Path, name: str, card: dict[str, Any]) -> None:
    """Add (or replace) this output's section in the README beside it; other text stays as it is."""
    start, end = f"<!-- dataset-card: {name} -->", f"<!-- /dataset-card: {name} -->"
    rows = card["rows"]
    lines = [
        start,
        f"## Synthetic data set `{name}`",
        "",
        f"- {rows['total']} {rows['unit']}s from the {card['model']['modality']} model `{card['model']['name']}` "
        f"({card['model']['source']}), model SHA-256 `{card['model']['digest_sha256'][:16]}...`, seed {card['seed']}",
        f"- made again with: `{card['reproduce']}`",
        "- files:",
        *[f"  - `{f['path']}` ({f['bytes']} bytes, SHA-256 `{f['sha256']}`)" for f in card.get("files", [])],
    ]
    summary = card["evaluation"].get("summary")
    if summary:
        lines += ["- evaluation:", "", "```", summary, "```"]
    per_class = card["evaluation"].get("per_class_fidelity", {}).get("scores")
    if per_class:
        lines += ["", f"Per-class fidelity ({card['evaluation']['per_class_fidelity']['column']}): "
                  + ", ".join(f"{k!s}: {v:.1%}" for k, v in per_class.items())]
    lines += ["", f"Full card: `{CARD_NAME}`.", end]
    section = "\n".join(lines)
    text = readme.read_text() if readme.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section + "\n"
    _atomic_write(readme, text)


# ------------------------------------------------------------------ helpers
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import engine

    out = {"engine": engine.__version__, "python": platform.python_version()}
    for package in ("numpy", "pandas", "pyarrow", "torch", "ray", "pydantic", "lark"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


def _jsonable(value: Any) -> Any:
    """Plain JSON data (NumPy scalars, tuples and non-finite floats made JSON's)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
