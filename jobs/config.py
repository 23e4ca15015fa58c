"""Typed job configuration, read from YAML/JSON and overridden by command-line flags.

The fields every modality shares are typed here. A modality's own options (a
table's ``columns`` and ``constraints``, an image's ``image_size``) are the
ones its front door declares (``Synthesizer.cli_options``): a config gives each
at its key (``columns.categorical``, ``image_size``) or under ``options:`` by
name, and it is checked against the front door of the config's model, so an
option of another modality is refused by name.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.core.errors import SynthError

if TYPE_CHECKING:
    from engine.core.synthesizer import Synthesizer

TRAIN_STAGES = ("init", "fit")
SAMPLE_STAGES = ("sample",)
# The pipeline splits a table's rows into training and holdout rows and evaluates row-wise: it runs the
# models of the modality named here (a name looked up in the registry, like a model name).
PIPELINE_MODALITY = "table"


class JobConfigError(SynthError, ValueError):
    """A job configuration file or flag is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScalingConfig(_Strict):
    num_workers: int = Field(1, ge=1, description="Ray Train workers")
    use_gpu: bool | None = Field(None, description="None: use a GPU when the cluster has one")
    cpus_per_worker: float | None = Field(None, gt=0, description="None: the cluster's CPUs shared among workers")


class CheckpointConfig(_Strict):
    every: int = Field(10, ge=1, description="epochs between checkpoints")
    storage_path: str | None = Field(None, description="local folder or s3:// / gs:// URI")
    run_name: str | None = Field(None, description="the same name resumes from the last checkpoint")
    max_failures: int = Field(0, ge=-1)


# ------------------------------------------------------------------ modality options
def gather_options(doc: Any, stages: Collection[str]) -> Any:
    """Move every declared option of ``stages`` (of any modality) from its key in ``doc`` into ``doc["options"]``.

    Keys may be dotted (``columns.categorical``): a parent mapping left empty
    is removed, and a key under it that no modality declares is refused with
    the keys it takes. Which modality takes what is checked later, against
    the model (:func:`options_for`).
    """
    from engine.core.synthesizer import declared_options

    if not isinstance(doc, Mapping):
        return doc  # pydantic reports what the config should be
    doc = copy.deepcopy(dict(doc))  # the caller's document stays as it was
    given = doc.pop("options", None) or {}
    if not isinstance(given, Mapping):
        raise ValueError(f"'options' must be a mapping of option names to values. Got {given!r} instead.")
    gathered = dict(given)
    parents: dict[tuple[str, ...], set[str]] = {}  # a parent's path -> the leaves declared under it
    for _, option in declared_options(stages):
        *path, leaf = option.key.split(".")
        node: Any = doc
        for i, part in enumerate(path):
            parents.setdefault(tuple(path[: i + 1]), set()).add(path[i + 1] if i + 1 < len(path) else leaf)
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, dict) and leaf in node:
            gathered[option.key] = node.pop(leaf)
    # Deepest parents first, so that a parent emptied of its children is removed in turn.
    for path in sorted(parents, key=len, reverse=True):
        *up, last = path
        holder: Any = doc
        for part in up:
            holder = holder.get(part) if isinstance(holder, Mapping) else None
        if not isinstance(holder, dict) or last not in holder:
            continue
        name, takes = ".".join(path), ", ".join(sorted(parents[path]))
        if not isinstance(holder[last], Mapping):
            raise ValueError(f"'{name}' must be a mapping of {takes}. Got {holder[last]!r} instead.")
        unknown = sorted(f"{name}.{k}" for k in holder[last])
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))}: no model has such an option; '{name}' takes {takes}.")
        del holder[last]
    if gathered:
        doc["options"] = gathered
    return doc


def options_for(
    front_door: type[Synthesizer], given: Mapping[str, Any], *, model: str | None, stages: Collection[str]
) -> dict[str, Any]:
    """``given`` options (by config key or name) checked against ``front_door``'s declarations, by name.

    An option of another modality is an error naming it and that modality; a
    bad value is an error naming the key and what it takes.
    """
    from engine.cli import wrong_modality_error
    from engine.core.synthesizer import declared_options

    own = {}
    for option in front_door.cli_options():
        if option.stage in stages:
            own[option.key] = own[option.name] = option
    out: dict[str, Any] = {}
    for key, value in given.items():
        option = own.get(key)
        if option is None:
            owners = [m for m, o in declared_options(stages) if key in (o.key, o.name)]
            takes = sorted({o.key for o in own.values()})
            raise wrong_modality_error(repr(key), owners, model, front_door.modality_info(), [repr(k) for k in takes])
        if value is not None:
            out[option.name] = option.check(value, repr(key))
    return out


def check_location(path: str, what: str) -> str:
    """``path`` when it is a URI or an existing local path; else an error saying how a job reaches it."""
    if "://" in path or os.path.exists(path):
        return path
    raise JobConfigError(
        f"The {what} {path!r} does not exist (looked for {os.path.abspath(path)!r}). A job submitted with "
        "`ray job submit --working-dir` runs in an uploaded copy of the working directory, which leaves out "
        "git-ignored folders such as outputs/: pass an absolute path on storage every node shares, or a storage "
        "URI (s3://..., gs://...)."
    )


# ------------------------------------------------------------------ configs
class TrainJobConfig(_Strict):
    """``jobs.train``: fit ``model`` on ``data`` and save it to ``out``.

    The modality's own options (``columns.categorical``, ``constraints``,
    ``image_size``, ...) go at their keys or under ``options``; they end up in
    ``options``, by name, checked against the model's front door.
    """

    data: str = Field(..., description="training data as the model's modality reads it, local or cloud URI; 'adult' for the demo set")
    out: str = Field(..., description="where the model artifact is saved")
    model: str | None = Field(None, description="a model name of any modality (ctgan, tvae, gaussian_copula, dcgan, ...); "
                              "none: a table model chosen by the data's size and the time budget")
    model_config_: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=2)
    time_budget: float | str | None = Field(None, description="training time limit: seconds or '90s', '10m', '1h'")
    seed: int = 0
    options: dict[str, Any] = Field(default_factory=dict, description="the modality's own options, by name")
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, doc: Any) -> Any:
        return gather_options(doc, TRAIN_STAGES)

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str | None) -> str | None:
        from engine.core.registry import modality_for_model

        if model is not None:
            modality_for_model(model)  # UnknownModelError (a ValueError) lists every modality's models
        return model

    @model_validator(mode="after")
    def _check_options(self) -> TrainJobConfig:
        self.options = options_for(self.front_door(), self.options, model=self.model, stages=TRAIN_STAGES)
        return self

    def front_door(self) -> type[Synthesizer]:
        """The front door class of this config's model (the tables' when none is named)."""
        from engine.cli import fit_modality

        return fit_modality(self.model).synthesizer_class()


class SampleJobConfig(_Strict):
    """``jobs.sample``: ``num_rows`` samples of the saved model ``model``, to a file or a folder of shards.

    Sampling options a modality declares (``precision`` for tables) are
    gathered into ``options`` and checked against the loaded model.
    """

    model: str = Field(..., description="saved model folder or URI")
    out: str | None = Field(None, description="output written in-process: a file for tables (.parquet/.csv/.json), a folder for images")
    out_dir: str | None = Field(None, description="output folder of Parquet shards, written by Ray Data")
    format: str | None = Field(None, description="format of 'out', one the model's modality writes (default: by the output)")
    num_rows: int = Field(..., ge=0)
    conditions: dict[str, Any] = Field(default_factory=dict, description="tables: {column: value or range}; images: {label: class}")
    label: str | int | None = Field(None, description="alias of conditions.label (image models: the class of every image)")
    seed: int = 0
    rows_per_shard: int = Field(100_000, ge=1)
    num_actors: int | None = Field(None, ge=1)
    use_gpu: bool | None = Field(None, description="sharded sampling: one GPU per actor; None: when the cluster has one now")
    cpus_per_actor: float = Field(1, gt=0, description="sharded sampling: CPUs reserved by each actor")
    options: dict[str, Any] = Field(default_factory=dict, description="the modality's sampling options, by name")

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, doc: Any) -> Any:
        return gather_options(doc, SAMPLE_STAGES)

    @model_validator(mode="after")
    def _one_output(self) -> SampleJobConfig:
        if (self.out is None) == (self.out_dir is None):
            raise ValueError("give exactly one of 'out' (a file) and 'out_dir' (a folder of shards)")
        if self.out_dir is not None and self.format not in (None, "parquet"):
            raise ValueError(f"'out_dir' gets Parquet shards; 'format' ({self.format!r}) applies to 'out'")
        if self.label is not None and self.conditions.get("label", self.label) != self.label:
            raise ValueError(f"'label' ({self.label!r}) and 'conditions.label' ({self.conditions['label']!r}) differ; give one")
        return self

    def all_conditions(self) -> dict[str, Any] | None:
        """``conditions`` with ``label`` folded in (None when there are none)."""
        conditions = dict(self.conditions)
        if self.label is not None:
            conditions["label"] = self.label
        return conditions or None


class PipelineJobConfig(_Strict):
    """``jobs.pipeline``: train on ``data`` minus a holdout, sample as many rows, evaluate."""

    data: str = Field(..., description="CSV/Parquet file or folder; 'adult' for the built-in demo set")
    out: str = Field("outputs/pipeline", description="output folder (model, synthetic.parquet, report)")
    model: str | None = Field(None, description=f"a model of the {PIPELINE_MODALITY!r} modality; none: the front door's default for the data and budget")
    epochs: int | None = Field(None, ge=1)
    time_budget: float | str | None = Field(None, description="training time limit: seconds or '90s', '10m', '1h'")
    target: str | None = Field(None, description="target column for ML efficacy ('income' for adult)")
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)

    @field_validator("model")
    @classmethod
    def _pipeline_model(cls, model: str | None) -> str | None:
        models = pipeline_models()
        if model is not None and model not in models:
            raise ValueError(
                f"the pipeline splits and evaluates rows of a table, so it runs the {PIPELINE_MODALITY} models "
                f"{', '.join(map(repr, models))}; got {model!r}"
            )
        return model


def pipeline_models() -> list[str]:
    """The models ``jobs.pipeline`` runs (those of :data:`PIPELINE_MODALITY`, from the registry)."""
    from engine.core.registry import get_modality

    return list(get_modality(PIPELINE_MODALITY).models)


def load_config(cls: type[BaseModel], path: str | None, overrides: dict[str, Any]) -> Any:
    """Read ``path`` (YAML or JSON) into ``cls``, with non-None ``overrides`` (dotted keys) on top."""
    doc: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise JobConfigError(f"The job config file {path!r} does not exist.")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise JobConfigError(f"The job config file {path!r} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise JobConfigError(f"The job config file {path!r} must hold a mapping of options.")
        doc = loaded
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = doc
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return cls.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        where = f"in {path!r}" if path else "in the flags"
        raise JobConfigError(f"Invalid job configuration {where}: {problems}.") from None


def _problem(error: Mapping[str, Any]) -> str:
    """One validation error as ``field: message`` (a whole-config check's message names its fields itself)."""
    message = str(error["msg"]).removeprefix("Value error, ").rstrip(".")  # the problems are joined into one sentence
    where = ".".join(str(x) for x in error["loc"])
    return f"{where}: {message}" if where else message
