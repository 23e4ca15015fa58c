"""Pretrained text-to-image diffusion pipelines (Stable Diffusion and the like) as image sources.

:class:`PretrainedDiffusion` wraps a diffusers pipeline, found by
:mod:`engine.images.pretrained.source` (a local folder, a well-known short name
or a Hugging Face hub id, cached copies first), and turns prompts into the
engine's image form: uint8 arrays ``(N, H, W, 3)``. Prompts, seeding and the
sharded Parquet writer are in :mod:`engine.images.pretrained.prompts`.

Randomness. Each image has its own generator seeded from ``(seed, prompt,
sample)`` (see :func:`~engine.images.pretrained.prompts.image_generator`). On
one device and dtype, a seed and a ``batch_size`` give bit-identical images;
another ``batch_size`` changes the summation order inside batched kernels,
which can move a rare pixel by one grey level (the images are otherwise the same).

Safety checker. Stable Diffusion 1.x checkpoints ship a safety checker that
replaces the images it flags as NSFW by black ones. It stays on by default:
it is part of the model as published, and the Stable Diffusion licence and
diffusers ask that unfiltered output is not exposed in public services.
``safety_checker=False`` drops it (it is then not even loaded, which saves
about 1 GB). Flagged images are kept, so counts stay exact, and reported:
:attr:`GeneratedImages.nsfw_flagged`, an ``nsfw_flagged`` Parquet column and a
logged warning; filter them out downstream.
"""
from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.batch.sharded import ShardedSampleResult
from engine.core.errors import InvalidDataError
from engine.images.pretrained.prompts import (
    DEFAULT_GUIDANCE_SCALE,
    DEFAULT_INFERENCE_STEPS,
    GenerationSettings,
    base_seed,
    check_int,
    check_prompts,
    generate_to_parquet,
    image_generator,
    positions,
    sample_counts,
)
from engine.images.pretrained.source import (
    PretrainedModelError,
    dtype_name,
    load_pipeline,
    resolve_device,
    resolve_dtype,
    resolve_source,
)

logger = logging.getLogger(__name__)

__all__ = ["GeneratedImages", "PretrainedDiffusion", "PretrainedModelError"]


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


# ------------------------------------------------------------------ the model
class PretrainedDiffusion:
    """A pretrained text-to-image pipeline that generates uint8 ``(N, H, W, 3)`` images from prompts.

    Args:
        model: a local pipeline folder (``save_pretrained`` / ``hf download``
            output, with ``model_index.json``), a short name of
            :data:`~engine.images.pretrained.source.KNOWN_PIPELINES`
            (``"stable-diffusion-v1-5"``, ``"sdxl"``, ...) or a Hugging Face hub
            id such as ``"stable-diffusion-v1-5/stable-diffusion-v1-5"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None picks CUDA when available.
        dtype: float32, float16 or bfloat16 (or their names); None is float16
            on CUDA and float32 elsewhere.
        local_files_only: None (default) loads a hub id from the local cache
            when it is there, without any network call, and downloads it only
            when it is not and ``HF_HUB_OFFLINE`` is off; True never goes to the
            network; False asks the hub first (for a newer revision).
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
        self._dtype_arg = dtype_name(dtype)  # what actors of a pool resolve again for their own device
        self.safety_checker = bool(safety_checker)
        self.source = resolve_source(model, local_files_only=local_files_only, revision=revision)
        self.pipeline = load_pipeline(self.source, self.dtype, safety_checker=self.safety_checker)
        self.pipeline.to(self.device)
        self._call_args = set(inspect.signature(self.pipeline.__call__).parameters)

    def __repr__(self) -> str:
        return (f"PretrainedDiffusion({self.source.model!r}, pipeline={type(self.pipeline).__name__}, "
                f"device={str(self.device)!r}, dtype={dtype_name(self.dtype)})")

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
            [prompt], check_int("num_samples", num_samples, 1), guidance_scale=guidance_scale,
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
        prompts = check_prompts(prompts)
        counts = sample_counts(num_samples_per_prompt, len(prompts))
        settings = GenerationSettings(guidance_scale, num_inference_steps, negative_prompt, height, width, batch_size)
        drawn_seed = base_seed(seed)
        prompt_index, sample_index = positions(counts, 0, int(counts.sum()))
        images, flags = self.render(prompts, prompt_index, sample_index, drawn_seed, settings)
        return GeneratedImages(images, prompt_index, sample_index, prompts, flags, drawn_seed)

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
            # The resolved folder or hub id (not a short name), at the revision this instance loaded.
            self.source.location, prompts, num_samples_per_prompt, output_dir, num_shards=num_shards, seed=seed,
            dtype=self._dtype_arg, local_files_only=True if self.source.local_files_only else None,
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
