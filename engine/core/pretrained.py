"""Pretrained weights from a local folder or a hub id, read with the library that owns the format."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from engine.core.errors import ArtifactError

WEIGHTS_NAME = "model.safetensors"


def pretrained_folder(source: str | os.PathLike[str]) -> Path:
    """The local folder of ``source``: itself when it is a folder, else the hub cache's copy of that id.

    The cache is read first and the hub asked only when the id is not cached (and the
    network allows it), so a machine without internet works with what it already has.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if "/" not in text or text.startswith((".", "/", "~")):
        raise ArtifactError(f"The pretrained source {text!r} is not a folder, nor a hub id of the form 'org/name'.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    try:
        return Path(snapshot_download(text))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise ArtifactError(
            f"The pretrained weights {text!r} are not in the local hub cache and cannot be downloaded here "
            f"({type(exc).__name__}). Download them elsewhere and pass the local folder instead."
        ) from None


def read_pretrained_tensors(source: str | os.PathLike[str], filename: str = WEIGHTS_NAME) -> dict[str, torch.Tensor]:
    """The tensors of ``filename`` (safetensors) in the folder or hub id ``source``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = pretrained_folder(source) / filename
    if not path.is_file():
        raise ArtifactError(f"The pretrained source {str(source)!r} has no {filename}.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path} is not a readable safetensors file ({exc}).") from None
