"""Typed arguments of the serving application and the API key they name.

``AppArgs`` is what ``serve_apps/config.yaml`` (``args:``), ``synth serve`` and
the tests pass to the application builder. Pydantic validates it, so a typo or
a bad value in the YAML fails the deploy with the field's name.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.core.errors import SynthError


class ServeConfigError(SynthError, ValueError):
    """The serving application's arguments cannot be used (missing key, bad store, ...)."""


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
    auth: bool = Field(default=True, description="require 'Authorization: Bearer <key>' on every /v1 route")
    api_key_env: str = Field(default="SYNTH_API_KEY", description="environment variable holding the API key")
    api_key_file: str | None = Field(default=None, description="file holding the API key (used when the variable is unset)")
    max_rows_per_request: int = Field(default=5_000_000, ge=1, description="largest num_rows one request may ask for")
    chunk_rows: int = Field(
        default=50_000, ge=1, le=1_000_000,
        description="rows per generated chunk: larger requests are streamed chunk by chunk",
    )
    image_chunk_rows: int = Field(
        default=256, ge=1, le=100_000,
        description="images per generated chunk for image models (an image costs far more than a row)",
    )
    max_images_per_request: int = Field(default=100_000, ge=1, description="largest num_rows one request may ask of an image model")
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
