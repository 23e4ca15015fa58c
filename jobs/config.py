"""Typed job configuration, read from YAML/JSON and overridden by command-line flags."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.core.errors import SynthError


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


class ColumnsConfig(_Strict):
    categorical: list[str] | None = None
    continuous: list[str] | None = None
    metadata: str | None = Field(None, description="JSON file of column kinds")


class TrainJobConfig(_Strict):
    data: str = Field(..., description="CSV/Parquet file or folder, local or cloud URI; 'adult' for the demo set")
    out: str = Field(..., description="where the model artifact is saved")
    model: Literal["ctgan", "tvae", "gaussian_copula", "dcgan", "wgan_gp", "ddpm"] = "ctgan"
    model_config_: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    image_size: int | None = Field(None, ge=4, description="image models: resize to this square size")
    channels: Literal[1, 3] | None = Field(None, description="image models: 1 grey, 3 colour")
    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=2)
    seed: int = 0
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    constraints: list[dict[str, Any]] = Field(default_factory=list)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)


class SampleJobConfig(_Strict):
    model: str = Field(..., description="saved model folder or URI")
    out: str | None = Field(None, description="output file (.parquet/.csv), written in-process")
    out_dir: str | None = Field(None, description="output folder of Parquet shards, written by Ray Data")
    num_rows: int = Field(..., ge=0)
    conditions: dict[str, Any] = Field(default_factory=dict)
    label: str | int | None = Field(None, description="image models: the class of every image")
    seed: int = 0
    rows_per_shard: int = Field(100_000, ge=1)
    num_actors: int | None = Field(None, ge=1)
    use_gpu: bool | None = Field(None, description="sharded sampling: one GPU per actor; None: when the cluster has one now")
    cpus_per_actor: float = Field(1, gt=0, description="sharded sampling: CPUs reserved by each actor")
    precision: Literal["auto", "float32", "bfloat16"] | None = Field(
        None, description="table models: numeric precision of generation (default: the one saved with the model)"
    )

    @model_validator(mode="after")
    def _one_output(self) -> "SampleJobConfig":
        if (self.out is None) == (self.out_dir is None):
            raise ValueError("give exactly one of 'out' (a file) and 'out_dir' (a folder of shards)")
        return self


class PipelineJobConfig(_Strict):
    """``jobs.pipeline``: train on ``data`` minus a holdout, sample as many rows, evaluate."""

    data: str = Field(..., description="CSV/Parquet file or folder; 'adult' for the built-in demo set")
    out: str = Field("outputs/pipeline", description="output folder (model, synthetic.parquet, report)")
    model: Literal["ctgan", "tvae", "gaussian_copula"] = "ctgan"
    epochs: int | None = Field(None, ge=1)
    target: str | None = Field(None, description="target column for ML efficacy ('income' for adult)")
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)


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
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        where = f"in {path!r}" if path else "in the flags"
        raise JobConfigError(f"Invalid job configuration {where}: {problems}.") from None
