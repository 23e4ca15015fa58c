"""Prompts and what is asked of them: checked requests, per-image seeding, and sharded generation to Parquet.

Randomness. Image ``k`` of prompt ``i`` starts from initial latents drawn by
its own CPU ``torch.Generator`` seeded from ``(seed, i, k)`` alone
(:func:`image_generator`), so an image does not depend on what else is
generated with it: asking for more samples per prompt adds images without
changing the first ones, and a Parquet shard holds the same images whatever
the number of actors. CPU generators make the starting noise the same on a CPU
and a GPU.

:func:`generate_to_parquet` spreads a large request over a Ray Data actor
pool, one pipeline per actor, into Parquet shards.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from engine.batch.sharded import ShardedSampleResult, ShardWriter, model_digest, run_shard_writers
from engine.core.errors import InvalidDataError
from engine.images.pretrained.source import dtype_name, resolve_dtype, resolve_source, text_to_image_loader

DEFAULT_GUIDANCE_SCALE = 7.5
DEFAULT_INFERENCE_STEPS = 50
DEFAULT_IMAGES_PER_SHARD = 100
PROMPT_COLUMN = "prompt"
PROMPT_INDEX_COLUMN = "prompt_index"
SAMPLE_INDEX_COLUMN = "sample_index"
NSFW_COLUMN = "nsfw_flagged"
_U64 = 0xFFFF_FFFF_FFFF_FFFF


# ------------------------------------------------------------------ checks
def check_int(name: str, value: Any, minimum: int, expected: str | None = None) -> int:
    """``value`` as an int when it is an integer >= ``minimum``; else an error naming ``name``, the value and the rule."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidDataError(f"{name} must be {expected or f'an integer >= {minimum}'}; got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class GenerationSettings:
    """The per-call settings of the pipeline; None leaves the pipeline's own default."""

    guidance_scale: float | None = DEFAULT_GUIDANCE_SCALE
    num_inference_steps: int | None = DEFAULT_INFERENCE_STEPS
    negative_prompt: str | None = None
    height: int | None = None
    width: int | None = None
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.guidance_scale is not None and (
            isinstance(self.guidance_scale, bool) or not isinstance(self.guidance_scale, (int, float, np.number))
            or not np.isfinite(self.guidance_scale) or self.guidance_scale < 0
        ):
            raise InvalidDataError(f"guidance_scale must be a number >= 0 (or None); got {self.guidance_scale!r}.")
        for name in ("num_inference_steps", "height", "width"):
            value = getattr(self, name)
            if value is not None:
                check_int(name, value, 1, "an integer >= 1 (or None)")
        check_int("batch_size", self.batch_size, 1)
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise InvalidDataError(f"negative_prompt must be a string (or None); got {self.negative_prompt!r}.")
        # Plain Python values, so the settings go into JSON manifests and compare equal after a round trip.
        if self.guidance_scale is not None:
            object.__setattr__(self, "guidance_scale", float(self.guidance_scale))
        for name in ("num_inference_steps", "height", "width", "batch_size"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))


def check_prompts(prompts: Any) -> list[str]:
    """``prompts`` as a non-empty list of strings, or an error saying which item is not one."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise InvalidDataError(
            f"prompts must be a list of strings; got {type(prompts).__name__}. For a single prompt, use generate()."
        )
    if not prompts:
        raise InvalidDataError("prompts is empty: give at least one prompt.")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise InvalidDataError(f"prompts must all be strings; item {bad[0]} is {prompts[bad[0]]!r}.")
    return list(prompts)


def sample_counts(num_samples_per_prompt: Any, num_prompts: int) -> np.ndarray:
    """Images per prompt: one int for every prompt, or one count per prompt (0 allowed, total >= 1)."""
    if isinstance(num_samples_per_prompt, (int, np.integer)) and not isinstance(num_samples_per_prompt, bool):
        return np.full(num_prompts, check_int("num_samples_per_prompt", num_samples_per_prompt, 1), dtype=np.int64)
    if isinstance(num_samples_per_prompt, (Sequence, np.ndarray)) and not isinstance(num_samples_per_prompt, str):
        counts = [check_int("num_samples_per_prompt", c, 0, "integers >= 0") for c in num_samples_per_prompt]
        if len(counts) != num_prompts:
            raise InvalidDataError(
                f"num_samples_per_prompt has {len(counts)} counts for {num_prompts} prompts; give one per prompt or one int."
            )
        if sum(counts) < 1:
            raise InvalidDataError("num_samples_per_prompt asks for no image at all; at least one count must be >= 1.")
        return np.asarray(counts, dtype=np.int64)
    raise InvalidDataError(
        f"num_samples_per_prompt must be an integer >= 1 or one count per prompt; got {num_samples_per_prompt!r}."
    )


# ------------------------------------------------------------------ seeding
def image_generator(seed: int, prompt_index: int, sample_index: int) -> torch.Generator:
    """The CPU generator of image ``sample_index`` of prompt ``prompt_index``: a function of the three alone."""
    state = np.random.SeedSequence([int(seed) & _U64, int(prompt_index), int(sample_index)]).generate_state(1, dtype=np.uint64)
    return torch.Generator(device="cpu").manual_seed(int(state[0]) & 0x7FFF_FFFF_FFFF_FFFF)


def positions(counts: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """``(prompt_index, sample_index)`` of the images at positions ``start .. stop - 1`` of the prompt-major order."""
    ends = np.cumsum(counts)
    pos = np.arange(start, stop, dtype=np.int64)
    prompt_index = np.searchsorted(ends, pos, side="right").astype(np.int64)
    return prompt_index, pos - (ends - counts)[prompt_index]


def base_seed(seed: int | None) -> int:
    """``seed`` as an int; None draws one at random (reported with the images, so a run can be repeated)."""
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidDataError(f"seed must be an integer (or None for a random one); got {seed!r}.")
    return int(seed)


# ------------------------------------------------------------- Parquet shards
def _shard_bounds(num_images: int, num_shards: int, shard: int) -> tuple[int, int]:
    """Positions ``[start, stop)`` of shard ``shard``: sizes differ by at most one, the total is exact."""
    return shard * num_images // num_shards, (shard + 1) * num_images // num_shards


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()


class PipelineShardWriter(ShardWriter):
    """An actor of the pool: loads the pipeline once, then writes the shards of images it is given."""

    def __init__(self, model: str, load: Mapping[str, Any], prompts: list[str], counts: list[int],
                 out_dir: str, request: Mapping[str, Any], use_gpu: bool):
        super().__init__(out_dir, request, use_gpu)
        # Imported here: the pipeline module imports this one.
        from engine.images.pretrained.pipeline import PretrainedDiffusion

        self.model = PretrainedDiffusion(model, device=self.device, **load)
        self.settings = GenerationSettings(**self.request["settings"])
        self.prompts, self.counts = prompts, np.asarray(counts, dtype=np.int64)

    def shard_bounds(self, shard: int) -> tuple[int, int]:
        return _shard_bounds(self.request["num_images"], self.request["num_shards"], shard)

    def make_shard(self, shard: int, start: int, stop: int) -> pa.Table:
        from engine.images.io import image_table

        prompt_index, sample_index = positions(self.counts, start, stop)
        images, nsfw = self.model.render(self.prompts, prompt_index, sample_index, self.request["seed"], self.settings)
        extra: dict[str, Any] = {
            PROMPT_COLUMN: [self.prompts[i] for i in prompt_index.tolist()],
            PROMPT_INDEX_COLUMN: prompt_index,
            SAMPLE_INDEX_COLUMN: sample_index,
        }
        if nsfw is not None:
            extra[NSFW_COLUMN] = nsfw
        return image_table(images, extra=extra)


def generate_to_parquet(
    model: str | os.PathLike[str],
    prompts: Sequence[str],
    num_samples_per_prompt: int | Sequence[int],
    output_dir: str | os.PathLike[str],
    *,
    num_shards: int | None = None,
    seed: int = 0,
    guidance_scale: float | None = DEFAULT_GUIDANCE_SCALE,
    num_inference_steps: int | None = DEFAULT_INFERENCE_STEPS,
    negative_prompt: str | None = None,
    height: int | None = None,
    width: int | None = None,
    batch_size: int = 4,
    dtype: torch.dtype | str | None = None,
    local_files_only: bool | None = None,
    safety_checker: bool = True,
    revision: str | None = None,
    num_actors: int | None = None,
    use_gpu: bool | None = None,
    cpus_per_actor: float = 1,
) -> ShardedSampleResult:
    """Write the images of ``prompts`` to ``output_dir`` as Parquet shards, over a Ray Data actor pool.

    The images are those of ``PretrainedDiffusion.generate_batch`` with the same
    arguments, in the same prompt-major order, split into ``num_shards``
    contiguous shards (``part-000000.parquet``, ...) whose sizes differ by at
    most one. Every image comes from ``(seed, prompt, sample)`` alone and each
    shard is cut into batches from its own start, so the files are the same
    whatever the number of actors (on one kind of device).

    Args:
        model: a pipeline folder, short name or hub id, as for :class:`PretrainedDiffusion`.
            Only its config (and a hash of a local folder's files: a few seconds
            for a multi-GB checkpoint) is read here; the weights load in the actors.
        prompts, num_samples_per_prompt: as for ``generate_batch``.
        output_dir: a local folder or a ``s3://`` / ``gs://`` URI.
        num_shards: default one shard per 100 images; at most one per image.
        seed, guidance_scale, num_inference_steps, negative_prompt, height,
            width, batch_size: as for ``generate_batch`` (seed is required here).
        dtype, local_files_only, safety_checker, revision: as for :class:`PretrainedDiffusion`;
            dtype None is float16 in actors given a GPU and float32 in the others.
        num_actors: size of the pool (default: one per free CPU, at most one per shard).
        use_gpu: one GPU per actor (default: when the cluster has any).
        cpus_per_actor: CPUs reserved by each actor.

    Columns: ``image`` (PNG ``{bytes, path}``, a Hugging Face ``Image``),
    ``prompt``, ``prompt_index``, ``sample_index``, and ``nsfw_flagged`` when
    the pipeline has a safety checker.

    As with ``engine.batch.sharded.sample_to_parquet``: ``manifest.json`` records the
    request, a re-run writes only the missing shards, a different request into
    the same folder raises ``ShardedSamplingError``, and Ray is started when not
    running. Returns a ``ShardedSampleResult`` whose rows are images and whose
    ``rows_per_shard`` is the largest shard's size.
    """
    prompts = check_prompts(prompts)
    counts = sample_counts(num_samples_per_prompt, len(prompts))
    settings = GenerationSettings(guidance_scale, num_inference_steps, negative_prompt, height, width, batch_size)
    num_images = int(counts.sum())
    if num_shards is None:
        num_shards = -(-num_images // DEFAULT_IMAGES_PER_SHARD)
    num_shards = check_int("num_shards", num_shards, 1)
    if num_shards > num_images:
        raise InvalidDataError(f"num_shards ({num_shards}) is more than the number of images ({num_images}); every shard needs one.")
    if num_actors is not None:
        num_actors = check_int("num_actors", num_actors, 1)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidDataError(f"seed must be an integer; got {seed!r}.")
    if isinstance(cpus_per_actor, bool) or not isinstance(cpus_per_actor, (int, float)) or not cpus_per_actor > 0:
        raise InvalidDataError(f"cpus_per_actor must be a number > 0; got {cpus_per_actor!r}.")
    resolve_dtype(dtype, torch.device("cuda"))  # validates the name; each actor resolves it for its own device
    # Fails here, before any actor starts or any file is written, when the model cannot be found.
    source = resolve_source(model, local_files_only=local_files_only, revision=revision)
    text_to_image_loader(source)

    request = {
        "model": source.location,
        "model_revision": source.revision,
        # A local folder's content, so a different checkpoint saved at the same path is a different model.
        "model_sha256": model_digest(source.location, recursive=True) if source.is_local else None,
        "pipeline": source.class_name,
        "num_prompts": len(prompts),
        "prompts_sha256": _digest(prompts),
        "samples_per_prompt_sha256": _digest(counts.tolist()),
        "num_images": num_images,
        "num_shards": num_shards,
        "seed": int(seed),
        "settings": asdict(settings),
        "dtype": dtype_name(dtype),
        "safety_checker": bool(safety_checker),
    }
    load = {
        # Actors look in their own cache first too (None); True keeps them off the network as the driver was.
        "dtype": dtype_name(dtype), "local_files_only": True if source.local_files_only else None,
        "safety_checker": bool(safety_checker), "revision": source.revision,
    }
    return run_shard_writers(
        PipelineShardWriter,
        # The resolved location (a folder or the hub id behind a short name), pinned to the driver's revision.
        {"model": source.location, "load": load, "prompts": prompts, "counts": counts.tolist()},
        out_dir=os.fspath(output_dir),
        request=request,
        num_rows=num_images,
        num_shards=num_shards,
        rows_per_shard=-(-num_images // num_shards),
        num_actors=num_actors,
        use_gpu=use_gpu,
        cpus_per_actor=cpus_per_actor,
    )
