"""Typed arguments of the serving application and the API key they name.

``AppArgs`` is what ``serve_apps/config.yaml`` (``args:``), ``synth serve`` and
the tests pass to the application builder. Pydantic validates it, so a typo or
a bad value in the YAML fails the deploy with the field's name.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.core.errors import SynthError

if TYPE_CHECKING:
    from engine.core.registry import Modality


class ServeConfigError(SynthError, ValueError):
    """The serving application's arguments cannot be used (missing key, bad store, ...)."""


# Limits per modality: the key "default" covers every modality not named. These are data, not branches:
# a sample of a modality costs what it costs (an image far more than a row), so some get their own figure.
DEFAULT_KEY = "default"
CHUNK_ROWS: dict[str, int] = {DEFAULT_KEY: 50_000, "image": 256, "audio": 256}
MAX_ROWS_PER_REQUEST: dict[str, int] = {DEFAULT_KEY: 5_000_000, "image": 100_000, "audio": 20_000}
# Fields of earlier versions, refused with the spelling that replaces them (rather than "extra inputs are not
# permitted"): old field -> (new field, modality key).
RENAMED_FIELDS: dict[str, tuple[str, str]] = {
    "image_chunk_rows": ("chunk_rows", "image"),
    "max_images_per_request": ("max_rows_per_request", "image"),
}
OBJECT_REFERENCE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


def _per_modality(value: Any, shipped: Mapping[str, int]) -> Any:
    """A per-modality limit as written in the config, as the full mapping.

    An integer is the default for every modality; a mapping replaces the
    shipped values of the keys it names and keeps the others, so
    ``chunk_rows: 2000`` still leaves images at their own, smaller, chunk.
    """
    if isinstance(value, Mapping):
        return {**shipped, **value}
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return {**shipped, DEFAULT_KEY: value}  # a str ("2000" from an env-expanded YAML) is checked as an int next
    raise ValueError(f"expected an integer (for every modality) or a mapping {{modality: integer}}; got {value!r}")


class DeploymentOptions(BaseModel):
    """How one deployment scales and what each replica reserves.

    Give either ``num_replicas`` or ``autoscaling_config`` (Serve's own dict:
    ``min_replicas``, ``max_replicas``, ``target_ongoing_requests``, ...).
    """

    model_config = ConfigDict(extra="forbid")

    num_replicas: int | None = Field(default=None, ge=1, description="fixed replica count (default 1)")
    autoscaling_config: dict[str, Any] | None = Field(default=None, description="Serve autoscaling policy")
    num_cpus: float = Field(default=1.0, ge=0, description="CPUs reserved per replica")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs per replica; torch models then sample on the GPU")
    max_ongoing_requests: int | None = Field(default=None, ge=1, description="concurrent requests per replica")

    @model_validator(mode="after")
    def _one_scaling_rule(self) -> "DeploymentOptions":
        if self.num_replicas is not None and self.autoscaling_config is not None:
            raise ValueError("give either 'num_replicas' or 'autoscaling_config', not both")
        return self

    def serve_options(self, default_max_ongoing: int) -> dict[str, Any]:
        """Keyword arguments for ``Deployment.options``."""
        opts: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "max_ongoing_requests": self.max_ongoing_requests or default_max_ongoing,
        }
        if self.autoscaling_config is not None:
            opts["autoscaling_config"] = self.autoscaling_config
        else:
            opts["num_replicas"] = self.num_replicas or 1
        return opts

    def min_replicas(self) -> int:
        """Replicas that must be scheduled before the application is up (Serve starts at initial_replicas if set)."""
        if self.autoscaling_config is not None:
            cfg = self.autoscaling_config
            return max(int(cfg.get("min_replicas", 1)), int(cfg.get("initial_replicas") or 0))
        return self.num_replicas or 1


class AppArgs(BaseModel):
    """Arguments of ``serve_apps.app:build_app``.

    Only ``models_dir`` is required. Auth is on unless ``auth: false``; the key
    is read where the application is built (the ``serve run`` / ``synth serve``
    process, or the cluster's build task under ``serve deploy``), from the
    environment variable ``api_key_env`` or else the file ``api_key_file``.
    """

    model_config = ConfigDict(extra="forbid")

    models_dir: str = Field(description="the model store: a folder or URI holding one saved model per sub-folder")
    data_root: str | None = Field(
        default=None, description="local folder that /v1/evaluate may read tables from by reference (None: uploads only)"
    )
    outputs_dir: str | None = Field(
        default=None, description="local folder /v1/generate writes data sets under (None: /v1/generate is off)"
    )
    auth: bool = Field(default=True, description="require 'Authorization: Bearer <key>' on every /v1 route")
    api_key_env: str = Field(default="SYNTH_API_KEY", description="environment variable holding the API key")
    api_key_file: str | None = Field(default=None, description="file holding the API key (used when the variable is unset)")
    max_rows_per_request: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: dict(MAX_ROWS_PER_REQUEST),
        description="largest num_rows one request may ask for, per modality: an integer for every modality, or "
        "{modality: n, 'default': n} (keys left out keep the shipped values)",
    )
    chunk_rows: dict[str, Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        default_factory=lambda: dict(CHUNK_ROWS),
        description="samples per generated chunk, per modality (larger requests are streamed chunk by chunk): an "
        "integer for every modality, or {modality: n, 'default': n} (keys left out keep the shipped values)",
    )
    modalities: list[str] = Field(
        default_factory=list,
        description="plugin modalities to serve, as 'package.module:attribute' naming engine.core.registry.Modality "
        "objects; every replica registers them when it starts (the module must be importable there)",
    )
    prefetch_chunks: int = Field(default=2, ge=1, le=16, description="chunks generated ahead of the one being sent")
    max_request_bytes: int = Field(default=1 << 20, ge=1024, description="largest JSON request body")
    max_upload_bytes: int = Field(default=64 << 20, ge=1024, description="largest /v1/evaluate upload (all files together)")
    max_eval_rows: int = Field(
        default=1_000_000, ge=1,
        description="most rows (CSV lines) one /v1/evaluate table may hold, counted before it is parsed (413 beyond)",
    )
    max_eval_bytes: int = Field(
        default=128 << 20, ge=1024,
        description="most decoded bytes one /v1/evaluate table may hold: CSV after gunzip, Parquet's uncompressed size (413 beyond)",
    )
    max_concurrent_streams: int = Field(
        default=4, ge=1,
        description="streamed responses (more than one chunk) an ingress replica produces at once; 503 with Retry-After beyond",
    )
    stream_retry_after_s: int = Field(default=5, ge=1, description="Retry-After of the 503 sent beyond max_concurrent_streams")
    max_models_per_replica: int = Field(default=4, ge=1, description="models a generation replica keeps loaded (LRU)")
    failed_load_retry_s: float = Field(
        default=10.0, ge=0, description="seconds a model that failed to load is answered 503 before it is tried again"
    )
    # The defaults fit a 2-core laptop with room (1.5 CPUs in all): Serve waits for every replica to be
    # scheduled, so reservations above the machine's CPUs would hang the start.
    generator: DeploymentOptions = Field(default_factory=lambda: DeploymentOptions(num_cpus=0.75))
    evaluator: DeploymentOptions = Field(default_factory=lambda: DeploymentOptions(num_cpus=0.5))
    ingress: DeploymentOptions = Field(default_factory=lambda: DeploymentOptions(num_cpus=0.25))

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for old, (new, key) in RENAMED_FIELDS.items():
                if old in data:
                    raise ValueError(
                        f"{old!r} was replaced by limits per modality: write {new}: {{{key}: {data[old]}}} "
                        f"(an integer {new} is the default for every modality)"
                    )
        return data

    @field_validator("chunk_rows", mode="before")
    @classmethod
    def _chunk_rows(cls, value: Any) -> Any:
        return _per_modality(value, CHUNK_ROWS)

    @field_validator("max_rows_per_request", mode="before")
    @classmethod
    def _max_rows(cls, value: Any) -> Any:
        return _per_modality(value, MAX_ROWS_PER_REQUEST)

    @field_validator("modalities")
    @classmethod
    def _modality_references(cls, value: list[str]) -> list[str]:
        for i, ref in enumerate(value):
            if not OBJECT_REFERENCE.fullmatch(ref.strip()):
                raise ValueError(
                    f"modalities[{i}] is {ref!r}; name a Modality object as 'package.module:attribute' "
                    "(e.g. 'my_plugin.modality:MODALITY')"
                )
        return [ref.strip() for ref in value]

    def chunk_rows_for(self, modality: str) -> int:
        """Samples per chunk for the modality called ``modality``."""
        return self.chunk_rows.get(modality, self.chunk_rows[DEFAULT_KEY])

    def max_rows_for(self, modality: str) -> int:
        """The most samples one request may ask of a model of the modality called ``modality``."""
        return self.max_rows_per_request.get(modality, self.max_rows_per_request[DEFAULT_KEY])


def load_modalities(references: Sequence[str]) -> list[Modality]:
    """The :class:`~engine.core.registry.Modality` objects named by ``references`` (``"module:attribute"``).

    Raises ServeConfigError naming the entry that cannot be imported or is not a Modality.
    """
    from engine.core.registry import Modality, resolve

    found = []
    for i, ref in enumerate(references):
        try:
            obj = resolve(ref)
        except SynthError as exc:
            raise ServeConfigError(f"modalities[{i}]: {exc} (the module must be importable where Serve runs)") from None
        if not isinstance(obj, Modality):
            what = f"the class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
            raise ServeConfigError(
                f"modalities[{i}] {ref!r} names {what}, not an engine.core.registry.Modality object."
            )
        found.append(obj)
    return found


def register_modalities(references: Sequence[str]) -> None:
    """Register the plugin modalities named by ``references`` in this process (each replica calls this when it starts)."""
    from engine.core.registry import register_modality

    for modality in load_modalities(references):
        register_modality(modality)


def check_modalities(args: AppArgs) -> list[Modality]:
    """Check the plugin modalities and the per-modality limits before any replica starts.

    Imports each ``modalities`` entry here, so a typo fails the deploy instead of
    every replica, and refuses a limit keyed by a modality this server cannot
    know (a typo like ``imag`` would otherwise silently leave the default).
    Returns the plugin modalities.
    """
    from engine.core.registry import REGISTRY

    plugins = load_modalities(args.modalities)
    known = set(REGISTRY.all()) | {m.name for m in plugins}
    for field, limits in (("chunk_rows", args.chunk_rows), ("max_rows_per_request", args.max_rows_per_request)):
        unknown = sorted(set(limits) - known - {DEFAULT_KEY})
        if unknown:
            raise ServeConfigError(
                f"{field} names {_names(unknown)}, which this server does not know; the modalities are "
                f"{_names(sorted(known))} ('{DEFAULT_KEY}' covers the others). A plugin modality must be listed in "
                "'modalities', installed as a plugin or named in $SYNTH_MODALITIES."
            )
    return plugins


def _names(items: Iterable[str]) -> str:
    return ", ".join(repr(i) for i in items)


def reserved_cpus(args: AppArgs) -> float:
    """CPUs the application reserves at its minimum replica counts: what a machine must have free to start it."""
    return sum(d.num_cpus * d.min_replicas() for d in (args.generator, args.evaluator, args.ingress))


def read_api_key(args: AppArgs) -> str:
    """The API key named by ``args`` (environment variable first, then the file)."""
    key = os.environ.get(args.api_key_env, "").strip()
    if not key and args.api_key_file:
        path = Path(args.api_key_file).expanduser()
        if not path.is_file():
            raise ServeConfigError(
                f"The API key file {str(path)!r} (api_key_file) does not exist; "
                f"create it or set the environment variable {args.api_key_env}."
            )
        key = path.read_text().strip()
    if not key:
        where = f"the environment variable {args.api_key_env!r}"
        if args.api_key_file:
            where += f" or the file {args.api_key_file!r}"
        raise ServeConfigError(
            f"Auth is on but no API key was found in {where}. Set one (e.g. "
            f"`export {args.api_key_env}=$(openssl rand -hex 32)`), or turn auth off (auth: false in the config, --no-auth for synth serve)."
        )
    if len(key) < 16:
        raise ServeConfigError(f"The API key in {args.api_key_env!r}/api_key_file is {len(key)} characters; use at least 16.")
    return key


def key_digest(key: str) -> str:
    """SHA-256 of a key: replicas hold only this, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def token_matches(token: str, digest: str) -> bool:
    """Constant-time check of a presented bearer token against the stored digest."""
    return hmac.compare_digest(key_digest(token), digest)
