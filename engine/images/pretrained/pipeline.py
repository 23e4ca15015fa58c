"""Pretrained text-to-image diffusion pipelines (Stable Diffusion and the like) as image sources.

:class:`PretrainedDiffusion` wraps a diffusers pipeline loaded from a local
folder (written by ``save_pretrained`` or fetched with ``hf download``) or a
Hugging Face hub id, and turns prompts into the engine's image form: uint8
arrays ``(N, H, W, 3)``. :func:`generate_to_parquet` spreads a large request
over a Ray Data actor pool, one pipeline per actor, into Parquet shards.

Randomness. Image ``k`` of prompt ``i`` starts from initial latents drawn by
its own CPU ``torch.Generator`` seeded from ``(seed, i, k)`` alone, so an image
does not depend on what else is generated with it: asking for more samples
per prompt adds images without changing the first ones, and a Parquet shard
holds the same images whatever the number of actors. CPU generators make the
starting noise the same on a CPU and a GPU. On one device and dtype, a seed
and a ``batch_size`` give bit-identical images; another ``batch_size`` changes
the summation order inside batched kernels, which can move a rare pixel by
one grey level (the images are otherwise the same).

Safety checker. Stable Diffusion 1.x checkpoints ship a safety checker that
replaces the images it flags as NSFW by black ones. It stays on by default:
it is part of the model as published, and the Stable Diffusion licence and
diffusers ask that unfiltered output is not exposed in public services.
``safety_checker=False`` drops it (it is then not even loaded, which saves
about 1 GB). Flagged images are kept, so counts stay exact, and reported:
:attr:`GeneratedImages.nsfw_flagged`, an ``nsfw_flagged`` Parquet column and a
logged warning; filter them out downstream.

Weights cannot be fetched offline: with ``HF_HUB_OFFLINE=1`` (or
``local_files_only=True``) a hub id must already be in the local Hugging Face
cache, and :class:`PretrainedModelError` says so when it is not.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import secrets
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.errors import ArtifactError, InvalidDataError
from engine.batch.sharded import (
    SHARD_COLUMN,
    ShardedSampleResult,
    _check_manifest,
    _device_for,
    _filesystem,
    _model_digest,
    _remove_stale_temporaries,
    _rows_in,
    _run_shard_actors,
    _summarise,
    _write_shard,
    shard_name,
)

logger = logging.getLogger(__name__)

DEFAULT_GUIDANCE_SCALE = 7.5
DEFAULT_INFERENCE_STEPS = 50
DEFAULT_IMAGES_PER_SHARD = 100
PROMPT_COLUMN = "prompt"
PROMPT_INDEX_COLUMN = "prompt_index"
SAMPLE_INDEX_COLUMN = "sample_index"
NSFW_COLUMN = "nsfw_flagged"
_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}
_U64 = 0xFFFF_FFFF_FFFF_FFFF
# The arguments without which a pipeline cannot be driven here: batched prompts, one generator per image, numpy out.
_REQUIRED_CALL_ARGS = ("prompt", "generator", "output_type")


class PretrainedModelError(ArtifactError):
    """A pretrained pipeline cannot be found, downloaded or used as a text-to-image pipeline."""


# ------------------------------------------------------------------ results
@dataclass
class GeneratedImages:
    """Images from several prompts and where each one came from.

    Attributes:
        images: uint8 ``(N, H, W, 3)``, prompt by prompt (all of prompt 0, then prompt 1, ...).
        prompt_index: ``(N,)`` int64, the prompt of each image as an index into ``prompts``.
        sample_index: ``(N,)`` int64, the image's number among its prompt's images.
        prompts: the prompts as given.
        nsfw_flagged: ``(N,)`` bool, images the pipeline's safety checker blacked out;
            None when the pipeline has no safety checker.
        seed: the seed the images came from (drawn at random when None was given).
    """

    images: np.ndarray
    prompt_index: np.ndarray
    sample_index: np.ndarray
    prompts: list[str]
    nsfw_flagged: np.ndarray | None
    seed: int

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_prompts(self) -> list[str]:
        """The prompt text of each image."""
        return [self.prompts[i] for i in self.prompt_index.tolist()]


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
                _check_int(name, value, 1, "an integer >= 1 (or None)")
        _check_int("batch_size", self.batch_size, 1)
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise InvalidDataError(f"negative_prompt must be a string (or None); got {self.negative_prompt!r}.")
        # Plain Python values, so the settings go into JSON manifests and compare equal after a round trip.
        if self.guidance_scale is not None:
            object.__setattr__(self, "guidance_scale", float(self.guidance_scale))
        for name in ("num_inference_steps", "height", "width", "batch_size"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))


# ------------------------------------------------------------------ helpers
def _check_int(name: str, value: Any, minimum: int, expected: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidDataError(f"{name} must be {expected or f'an integer >= {minimum}'}; got {value!r}.")
    return int(value)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; None picks CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidDataError(f"device must be 'cpu', 'cuda', 'cuda:N' or None; got {device!r}.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidDataError(f"device={device!r} was asked for, but no CUDA GPU is available; use 'cpu' or None.")
    return resolved


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """``dtype`` as a torch dtype; None is float16 on CUDA (half the memory, tensor cores) and float32 elsewhere."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.lower().removeprefix("torch.")]
    raise InvalidDataError(f"dtype must be float32, float16, bfloat16 (a torch.dtype or its name) or None; got {dtype!r}.")


def _dtype_name(dtype: torch.dtype | str | None) -> str | None:
    return None if dtype is None else str(dtype).removeprefix("torch.")


def image_generator(seed: int, prompt_index: int, sample_index: int) -> torch.Generator:
    """The CPU generator of image ``sample_index`` of prompt ``prompt_index``: a function of the three alone."""
    state = np.random.SeedSequence([int(seed) & _U64, int(prompt_index), int(sample_index)]).generate_state(1, dtype=np.uint64)
    return torch.Generator(device="cpu").manual_seed(int(state[0]) & 0x7FFF_FFFF_FFFF_FFFF)


def _check_prompts(prompts: Any) -> list[str]:
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


def _sample_counts(num_samples_per_prompt: Any, num_prompts: int) -> np.ndarray:
    """Images per prompt: one int for every prompt, or one count per prompt (0 allowed, total >= 1)."""
    if isinstance(num_samples_per_prompt, (int, np.integer)) and not isinstance(num_samples_per_prompt, bool):
        return np.full(num_prompts, _check_int("num_samples_per_prompt", num_samples_per_prompt, 1), dtype=np.int64)
    if isinstance(num_samples_per_prompt, (Sequence, np.ndarray)) and not isinstance(num_samples_per_prompt, str):
        counts = [_check_int("num_samples_per_prompt", c, 0, "integers >= 0") for c in num_samples_per_prompt]
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


def _positions(counts: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """``(prompt_index, sample_index)`` of the images at positions ``start .. stop - 1`` of the prompt-major order."""
    ends = np.cumsum(counts)
    pos = np.arange(start, stop, dtype=np.int64)
    prompt_index = np.searchsorted(ends, pos, side="right").astype(np.int64)
    return prompt_index, pos - (ends - counts)[prompt_index]


def _base_seed(seed: int | None) -> int:
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidDataError(f"seed must be an integer (or None for a random one); got {seed!r}.")
    return int(seed)


def _to_uint8(images: Any) -> np.ndarray:
    """Pipeline output (floats in [0, 1], ``(B, H, W, C)``) as uint8 ``(B, H, W, 3)``, rounded as diffusers' PIL output is."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3])


# ------------------------------------------------------------------ sources
@dataclass(frozen=True)
class PipelineSource:
    """Where a pipeline comes from, resolved once: a local folder or a hub id pinned to a revision."""

    model: str  # as the user gave it
    location: str  # an absolute folder, or the hub id
    is_local: bool
    local_files_only: bool
    revision: str | None  # the hub commit the config came from; None for a folder
    class_name: str
    config: Mapping[str, Any]


def _hub_offline() -> bool:
    # Read at call time: huggingface_hub reads HF_HUB_OFFLINE once, at import.
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else can only have meant a folder.
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def resolve_source(model: str | os.PathLike[str], *, local_files_only: bool | None = None,
                   revision: str | None = None) -> PipelineSource:
    """Find the pipeline ``model`` names and read its ``model_index.json``, without loading any weights.

    Raises :class:`PretrainedModelError` for a missing folder, a folder that is
    not a diffusers pipeline, or a hub id that is not cached and cannot be downloaded.
    """
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model).strip():
        raise InvalidDataError(f"model must be a pipeline folder or a Hugging Face hub id (a non-empty string); got {model!r}.")
    name = os.fspath(model)
    offline = _hub_offline() if local_files_only is None else bool(local_files_only)
    path = Path(name).expanduser()
    from diffusers import DiffusionPipeline

    if path.exists():
        if not path.is_dir():
            raise PretrainedModelError(
                f"The model path {name!r} is a file; expected a diffusers pipeline folder (with model_index.json) or a hub id."
            )
        if not (path / "model_index.json").is_file():
            held = sorted(p.name for p in path.iterdir())[:8]
            raise PretrainedModelError(
                f"The folder {name!r} is not a diffusers pipeline: it has no model_index.json (it holds "
                f"{', '.join(held) or 'nothing'}). Give the folder written by save_pretrained or fetched with `hf download`."
            )
        location = str(path.resolve())
        try:
            config = DiffusionPipeline.load_config(location, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise PretrainedModelError(f"Cannot read {location}/model_index.json: {_first_line(exc)}") from None
        commit, is_local = None, True
    elif _looks_like_path(name):
        raise PretrainedModelError(f"The model folder {name!r} does not exist.")
    else:
        location, is_local = name, False
        try:
            with warnings.catch_warnings():
                # diffusers passes huggingface_hub an argument it has deprecated; nothing a user can act on.
                warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks", category=UserWarning)
                config, commit = DiffusionPipeline.load_config(
                    name, local_files_only=offline, revision=revision, return_commit_hash=True
                )
        except Exception as exc:  # noqa: BLE001 - any failure here means the hub id cannot be resolved
            if offline:
                why = "local_files_only=True" if local_files_only else "offline mode is on (HF_HUB_OFFLINE)"
                raise PretrainedModelError(
                    f"Cannot load the pretrained pipeline {name!r}: there is no local folder of that name, and {why}, "
                    "so the hub id must already be in the local Hugging Face cache, where it is not. Download it where "
                    f"the hub is reachable (`hf download {name} --local-dir <folder>`) and pass that folder. "
                    f"({_first_line(exc)})"
                ) from None
            raise PretrainedModelError(
                f"Cannot load the pretrained pipeline {name!r}: there is no local folder of that name, and the hub id "
                "is neither in the local Hugging Face cache nor downloadable (no network access, a misspelt id, or a "
                f"gated model that needs `hf auth login`). ({_first_line(exc)})"
            ) from None
    class_name = config.get("_class_name") if isinstance(config, Mapping) else None
    if not isinstance(class_name, str):
        raise PretrainedModelError(f"The model_index.json of {name!r} names no pipeline class (_class_name).")
    return PipelineSource(name, location, is_local, offline, commit if commit else None, class_name, dict(config))


def _text_to_image_loader(source: PipelineSource):
    """The diffusers entry point for ``source``: AutoPipelineForText2Image when it knows the family."""
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline
    from diffusers.pipelines.auto_pipeline import AUTO_TEXT2IMAGE_PIPELINES_MAPPING, SUPPORTED_TASKS_MAPPINGS

    for mapping in SUPPORTED_TASKS_MAPPINGS:
        for family, cls in mapping.items():
            if cls.__name__ == source.class_name:
                if family not in AUTO_TEXT2IMAGE_PIPELINES_MAPPING:
                    raise PretrainedModelError(
                        f"{source.model!r} is a {source.class_name}, which has no text-to-image counterpart in diffusers."
                    )
                # Also maps a folder saved as an image-to-image or inpainting pipeline to its text-to-image twin.
                return AutoPipelineForText2Image
    return DiffusionPipeline  # other families (and custom pipelines): checked by signature after loading


def _has_component(config: Mapping[str, Any], name: str) -> bool:
    value = config.get(name)
    return isinstance(value, (list, tuple)) and len(value) == 2 and value[0] is not None


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No per-component loading bars (one per actor in a pool is noise); the previous setting comes back after."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    restore = [m for m in (diffusers_logging, transformers_logging) if m.is_progress_bar_enabled()]
    for module in restore:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module in restore:
            module.enable_progress_bar()


def load_pipeline(source: PipelineSource, dtype: torch.dtype, *, safety_checker: bool = True):
    """The diffusers pipeline of ``source`` in ``dtype``, on the CPU, progress bars off."""
    from diffusers.utils import is_accelerate_available

    loader = _text_to_image_loader(source)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": source.is_local or source.local_files_only}
    if not source.is_local and source.revision:
        kwargs["revision"] = source.revision  # the commit the driver saw, so every actor loads the same weights
    if not is_accelerate_available():
        kwargs["low_cpu_mem_usage"] = False  # what diffusers falls back to anyway, minus its warning
    if not safety_checker and _has_component(source.config, "safety_checker"):
        kwargs["safety_checker"] = None  # never loaded
        if "requires_safety_checker" in source.config:
            kwargs["requires_safety_checker"] = False  # the user asked; no warning about it
    with _quiet_loading():
        try:
            pipeline = loader.from_pretrained(source.location, **kwargs)
        except (OSError, ValueError, RuntimeError, ImportError, KeyError, TypeError) as exc:
            raise PretrainedModelError(
                f"Cannot load the {source.class_name} pipeline {source.model!r}: {_first_line(exc)}"
            ) from None
    params = inspect.signature(pipeline.__call__).parameters
    missing = [p for p in _REQUIRED_CALL_ARGS if p not in params]
    if missing:
        raise PretrainedModelError(
            f"{source.model!r} is a {type(pipeline).__name__}, not a text-to-image pipeline this engine can drive: "
            f"its call takes no {', '.join(missing)} argument."
        )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


# ------------------------------------------------------------------ the model
class PretrainedDiffusion:
    """A pretrained text-to-image pipeline that generates uint8 ``(N, H, W, 3)`` images from prompts.

    Args:
        model: a local pipeline folder (``save_pretrained`` / ``hf download``
            output, with ``model_index.json``) or a Hugging Face hub id such as
            ``"stable-diffusion-v1-5/stable-diffusion-v1-5"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None picks CUDA when available.
        dtype: float32, float16 or bfloat16 (or their names); None is float16
            on CUDA and float32 elsewhere.
        local_files_only: True never goes to the network (a hub id must be
            cached); None follows ``HF_HUB_OFFLINE``; False may download.
        safety_checker: keep the pipeline's NSFW safety checker when it has one
            (the default, see the module notes); False does not load it.
        revision: branch, tag or commit of a hub id.

    Raises :class:`PretrainedModelError` when the model cannot be found,
    downloaded or used for text-to-image, and ``InvalidDataError`` for bad options.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        local_files_only: bool | None = None,
        safety_checker: bool = True,
        revision: str | None = None,
    ):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._dtype_arg = _dtype_name(dtype)  # what actors of a pool resolve again for their own device
        self.safety_checker = bool(safety_checker)
        self.source = resolve_source(model, local_files_only=local_files_only, revision=revision)
        self.pipeline = load_pipeline(self.source, self.dtype, safety_checker=self.safety_checker)
        self.pipeline.to(self.device)
        self._call_args = set(inspect.signature(self.pipeline.__call__).parameters)

    def __repr__(self) -> str:
        return (f"PretrainedDiffusion({self.source.model!r}, pipeline={type(self.pipeline).__name__}, "
                f"device={str(self.device)!r}, dtype={_dtype_name(self.dtype)})")

    @property
    def has_safety_checker(self) -> bool:
        """Whether generated images go through a safety checker."""
        return getattr(self.pipeline, "safety_checker", None) is not None

    # -------------------------------------------------------------- public
    def generate(
        self,
        prompt: str,
        num_samples: int = 1,
        *,
        guidance_scale: float | None = DEFAULT_GUIDANCE_SCALE,
        num_inference_steps: int | None = DEFAULT_INFERENCE_STEPS,
        negative_prompt: str | None = None,
        height: int | None = None,
        width: int | None = None,
        seed: int | None = None,
        batch_size: int = 4,
    ) -> np.ndarray:
        """``num_samples`` images of ``prompt``, uint8 ``(N, H, W, 3)``.

        The pipeline runs on ``batch_size`` images at a time; the same ``seed``
        gives the same images (image ``k`` is image ``k`` of
        ``generate_batch([prompt], ...)``). ``height`` / ``width`` default to
        the pipeline's native size; None for ``guidance_scale`` or
        ``num_inference_steps`` keeps the pipeline's own default.
        """
        if not isinstance(prompt, str):
            raise InvalidDataError(f"prompt must be a string; got {type(prompt).__name__}. For several, use generate_batch().")
        return self.generate_batch(
            [prompt], _check_int("num_samples", num_samples, 1), guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps, negative_prompt=negative_prompt, height=height, width=width,
            seed=seed, batch_size=batch_size,
        ).images

    def generate_batch(
        self,
        prompts: Sequence[str],
        num_samples_per_prompt: int | Sequence[int] = 1,
        *,
        guidance_scale: float | None = DEFAULT_GUIDANCE_SCALE,
        num_inference_steps: int | None = DEFAULT_INFERENCE_STEPS,
        negative_prompt: str | None = None,
        height: int | None = None,
        width: int | None = None,
        seed: int | None = None,
        batch_size: int = 4,
    ) -> GeneratedImages:
        """Images for several prompts, prompt by prompt, with the prompt of each image.

        ``num_samples_per_prompt`` is one count for every prompt or one count
        per prompt. Prompts are mixed freely within a batch of ``batch_size``.
        """
        prompts = _check_prompts(prompts)
        counts = _sample_counts(num_samples_per_prompt, len(prompts))
        settings = GenerationSettings(guidance_scale, num_inference_steps, negative_prompt, height, width, batch_size)
        base_seed = _base_seed(seed)
        prompt_index, sample_index = _positions(counts, 0, int(counts.sum()))
        images, flags = self.render(prompts, prompt_index, sample_index, base_seed, settings)
        return GeneratedImages(images, prompt_index, sample_index, prompts, flags, base_seed)

    def generate_to_parquet(
        self,
        prompts: Sequence[str],
        num_samples_per_prompt: int | Sequence[int],
        output_dir: str | os.PathLike[str],
        *,
        num_shards: int | None = None,
        seed: int = 0,
        **options: Any,
    ) -> ShardedSampleResult:
        """:func:`generate_to_parquet` with this instance's model, dtype and safety-checker choice.

        The actors load their own copies of the pipeline; to keep the driver
        free of the weights, call the module-level function instead.
        """
        return generate_to_parquet(
            self.source.model, prompts, num_samples_per_prompt, output_dir, num_shards=num_shards, seed=seed,
            dtype=self._dtype_arg, local_files_only=self.source.local_files_only,
            safety_checker=self.safety_checker, revision=self.source.revision, **options,
        )

    # ------------------------------------------------------------ internal
    def render(
        self,
        prompts: Sequence[str],
        prompt_index: np.ndarray,
        sample_index: np.ndarray,
        seed: int,
        settings: GenerationSettings,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Images ``(prompt_index[j], sample_index[j])``, in chunks of ``settings.batch_size``; and NSFW flags."""
        chunks: list[np.ndarray] = []
        flags: list[np.ndarray | None] = []
        for start in range(0, len(prompt_index), settings.batch_size):
            pi = prompt_index[start:start + settings.batch_size].tolist()
            si = sample_index[start:start + settings.batch_size].tolist()
            out = self._call([prompts[i] for i in pi], [image_generator(seed, i, k) for i, k in zip(pi, si)], settings)
            images = _to_uint8(out.images)
            if len(images) != len(pi):
                raise PretrainedModelError(
                    f"The {type(self.pipeline).__name__} pipeline returned {len(images)} images for {len(pi)} prompts."
                )
            chunks.append(images)
            detected = getattr(out, "nsfw_content_detected", None)
            flags.append(None if detected is None else np.asarray([bool(d) for d in detected], dtype=bool))
        images = np.concatenate(chunks)
        if all(f is None for f in flags):
            return images, None
        nsfw = np.concatenate([np.zeros(len(c), bool) if f is None else f for c, f in zip(chunks, flags)])
        if nsfw.any():
            logger.warning(
                "The safety checker flagged %d of %d images as NSFW; the pipeline replaced them by black images. "
                "They are kept so that counts stay exact; drop them with the nsfw_flagged mask.", int(nsfw.sum()), len(nsfw)
            )
        return images, nsfw

    def _call(self, prompts: list[str], generators: list[torch.Generator], settings: GenerationSettings):
        kwargs: dict[str, Any] = {"prompt": prompts, "generator": generators, "output_type": "np"}
        if "num_images_per_prompt" in self._call_args:
            kwargs["num_images_per_prompt"] = 1
        if "return_dict" in self._call_args:
            kwargs["return_dict"] = True
        defaults = {"guidance_scale": DEFAULT_GUIDANCE_SCALE, "num_inference_steps": DEFAULT_INFERENCE_STEPS}
        for name in ("guidance_scale", "num_inference_steps", "negative_prompt", "height", "width"):
            value = getattr(settings, name)
            if value is None:
                continue
            if name not in self._call_args:
                if defaults.get(name) == value:
                    continue  # an untouched default of ours, for a pipeline that has no such knob
                raise InvalidDataError(f"The {type(self.pipeline).__name__} pipeline takes no {name!r}; leave it as None.")
            # A list, as the pipelines want the negative prompts to match the prompts in type and length.
            kwargs[name] = [value] * len(prompts) if name == "negative_prompt" else value
        try:
            return self.pipeline(**kwargs)
        except ValueError as exc:  # the pipeline's own checks of the request (sizes, lengths...)
            raise InvalidDataError(f"The {type(self.pipeline).__name__} pipeline rejected the request: {exc}") from None
        except torch.cuda.OutOfMemoryError:
            raise InvalidDataError(
                f"Out of GPU memory generating {len(prompts)} images at once on {self.device}; lower batch_size "
                "(or height / width)."
            ) from None


# ------------------------------------------------------------- Parquet shards
def _shard_bounds(num_images: int, num_shards: int, shard: int) -> tuple[int, int]:
    """Positions ``[start, stop)`` of shard ``shard``: sizes differ by at most one, the total is exact."""
    return shard * num_images // num_shards, (shard + 1) * num_images // num_shards


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()


class PipelineShardWriter:
    """An actor of the pool: loads the pipeline once, then writes the shards of images it is given."""

    def __init__(self, model: str, load: Mapping[str, Any], out_dir: str, request: Mapping[str, Any],
                 prompts: list[str], counts: list[int], use_gpu: bool):
        self.model = PretrainedDiffusion(model, device=_device_for(use_gpu), **load)
        self.filesystem, self.root = _filesystem(out_dir)
        self.request = dict(request)
        self.settings = GenerationSettings(**self.request["settings"])
        self.prompts, self.counts = prompts, np.asarray(counts, dtype=np.int64)

    def _table(self, start: int, stop: int):
        from engine.images.io import image_table

        prompt_index, sample_index = _positions(self.counts, start, stop)
        images, nsfw = self.model.render(self.prompts, prompt_index, sample_index, self.request["seed"], self.settings)
        extra: dict[str, Any] = {
            PROMPT_COLUMN: [self.prompts[i] for i in prompt_index.tolist()],
            PROMPT_INDEX_COLUMN: prompt_index,
            SAMPLE_INDEX_COLUMN: sample_index,
        }
        if nsfw is not None:
            extra[NSFW_COLUMN] = nsfw
        return image_table(images, extra=extra)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        total, num_shards = self.request["num_images"], self.request["num_shards"]
        shards = np.asarray(batch[SHARD_COLUMN], dtype=np.int64).reshape(-1)
        counts = np.zeros(len(shards), dtype=np.int64)
        written = np.zeros(len(shards), dtype=bool)
        for i, shard in enumerate(shards.tolist()):
            start, stop = _shard_bounds(total, num_shards, shard)
            counts[i] = stop - start
            if _rows_in(self.filesystem, f"{self.root}/{shard_name(shard)}") != counts[i]:
                _write_shard(self.filesystem, self.root, shard, self._table(start, stop))
                written[i] = True
        return {"shard": shards, "rows": counts, "written": written}


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
        model: a pipeline folder or hub id, as for :class:`PretrainedDiffusion`.
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

    As with ``engine.sampling.sample_to_parquet``: ``manifest.json`` records the
    request, a re-run writes only the missing shards, a different request into
    the same folder raises ``ShardedSamplingError``, and Ray is started when not
    running. Returns a ``ShardedSampleResult`` whose rows are images and whose
    ``rows_per_shard`` is the largest shard's size.
    """
    prompts = _check_prompts(prompts)
    counts = _sample_counts(num_samples_per_prompt, len(prompts))
    settings = GenerationSettings(guidance_scale, num_inference_steps, negative_prompt, height, width, batch_size)
    num_images = int(counts.sum())
    if num_shards is None:
        num_shards = -(-num_images // DEFAULT_IMAGES_PER_SHARD)
    num_shards = _check_int("num_shards", num_shards, 1)
    if num_shards > num_images:
        raise InvalidDataError(f"num_shards ({num_shards}) is more than the number of images ({num_images}); every shard needs one.")
    if num_actors is not None:
        num_actors = _check_int("num_actors", num_actors, 1)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidDataError(f"seed must be an integer; got {seed!r}.")
    if isinstance(cpus_per_actor, bool) or not isinstance(cpus_per_actor, (int, float)) or not cpus_per_actor > 0:
        raise InvalidDataError(f"cpus_per_actor must be a number > 0; got {cpus_per_actor!r}.")
    resolve_dtype(dtype, torch.device("cuda"))  # validates the name; each actor resolves it for its own device
    # Fails here, before any actor starts or any file is written, when the model cannot be found.
    source = resolve_source(model, local_files_only=local_files_only, revision=revision)
    _text_to_image_loader(source)

    request = {
        "model": source.location,
        "model_revision": source.revision,
        # A local folder's content, so a different checkpoint saved at the same path is a different model.
        "model_sha256": _model_digest(source.location, recursive=True) if source.is_local else None,
        "pipeline": source.class_name,
        "num_prompts": len(prompts),
        "prompts_sha256": _digest(prompts),
        "samples_per_prompt_sha256": _digest(counts.tolist()),
        "num_images": num_images,
        "num_shards": num_shards,
        "seed": int(seed),
        "settings": asdict(settings),
        "dtype": _dtype_name(dtype),
        "safety_checker": bool(safety_checker),
    }
    out_dir = os.fspath(output_dir)
    filesystem, root = _filesystem(out_dir)
    filesystem.create_dir(root, recursive=True)
    _check_manifest(filesystem, root, out_dir, request)
    _remove_stale_temporaries(filesystem, root)

    load = {
        "dtype": _dtype_name(dtype), "local_files_only": source.local_files_only,
        "safety_checker": bool(safety_checker), "revision": source.revision,
    }
    results = _run_shard_actors(
        PipelineShardWriter,
        {
            "model": source.location, "load": load, "out_dir": out_dir if "://" in out_dir else root,
            "request": request, "prompts": prompts, "counts": counts.tolist(),
        },
        num_shards,
        num_actors=num_actors,
        use_gpu=use_gpu,
        cpus_per_actor=cpus_per_actor,
    )
    return _summarise(results, out_dir, num_images, num_shards, -(-num_images // num_shards))
