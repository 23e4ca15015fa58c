"""The model artifact: a directory of JSON documents and safetensors weights.

Layout::

    manifest.json         format name and version, engine version, model name, file list
    config.json           model name, model config, training options
    schema.json           the fitted TableSchema
    preprocessor.json     the fitted encoder / codec state
    requirements.json     constraints declared at fit time (with what they learned)
    model_state.json      the model's JSON state beyond tensors
    metrics.json          training history
    weights.safetensors   every learned tensor
    files/...             extra files a modality needs (a tokenizer, a vocabulary), as bytes

The manifest records the modality, the model and the SHA-256 of every file;
loading checks each digest, so a file changed or truncated after the save is
named instead of being read.

Nothing is ever unpickled. ``path`` may be a local folder or a URI that
pyarrow's filesystems understand (``s3://``, ``gs://``, ``file://``). The
manifest is written last, so a directory without one is an interrupted save.
Local saves go to a temporary sibling first and are renamed into place, so a
failed save never leaves a half-written model where a good one stood.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pyarrow import fs as pafs
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from engine.core.errors import ArtifactError

FORMAT_NAME = "synth-engine-model"
FORMAT_VERSION = 1
JSON_FILES = ("config.json", "schema.json", "preprocessor.json", "requirements.json", "model_state.json", "metrics.json")
WEIGHTS_FILE = "weights.safetensors"
EXTRA_FILES_DIR = "files"


def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synth-engine")
    except PackageNotFoundError:
        return "0.0.0+local"


@dataclass
class Artifact:
    """The in-memory content of a saved model."""

    model: str
    config: dict[str, Any]
    modality: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    preprocessor: dict[str, Any] = field(default_factory=dict)
    requirements: dict[str, Any] = field(default_factory=dict)
    model_state: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    # Extra files by relative name (``"tokenizer.json"``), saved under ``files/`` and hashed in the manifest.
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    def documents(self) -> dict[str, dict[str, Any]]:
        return {
            "config.json": {"model": self.model, **self.config},
            "schema.json": self.schema,
            "preprocessor.json": self.preprocessor,
            "requirements.json": self.requirements,
            "model_state.json": self.model_state,
            "metrics.json": self.metrics,
        }


def _is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, default=_json_default, allow_nan=True).encode()


def save_artifact(artifact: Artifact, path: str | os.PathLike[str]) -> str:
    """Write ``artifact`` to ``path`` (replacing a previous model there); return the path."""
    path = str(path)
    files = {name: _encode(doc) for name, doc in artifact.documents().items()}
    files[WEIGHTS_FILE] = save_safetensors({k: v.contiguous() for k, v in artifact.tensors.items()})
    for name, blob in artifact.files.items():
        files[f"{EXTRA_FILES_DIR}/{_extra_name(name)}"] = bytes(blob)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "engine_version": engine_version(),
        "modality": artifact.modality,
        "model": artifact.model,
        "files": sorted(files),
        "sha256": {name: hashlib.sha256(blob).hexdigest() for name, blob in sorted(files.items())},
    }
    if _is_uri(path):
        filesystem, root = pafs.FileSystem.from_uri(path)
        filesystem.create_dir(root, recursive=True)
        for name, blob in files.items():
            with filesystem.open_output_stream(f"{root}/{name}") as out:
                out.write(blob)
        with filesystem.open_output_stream(f"{root}/manifest.json") as out:
            out.write(_encode(manifest))
        return path

    target = Path(path.removeprefix("file://")).expanduser()
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"Cannot save the model to {str(target)!r}: a file (not a folder) is there.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    try:
        for name, blob in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(blob)
        (staging / "manifest.json").write_bytes(_encode(manifest))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return str(target)


def _reader(path: str):
    if _is_uri(path):
        filesystem, root = pafs.FileSystem.from_uri(path)

        def read(name: str) -> bytes:
            try:
                with filesystem.open_input_stream(f"{root}/{name}") as f:
                    return f.read()
            except (FileNotFoundError, OSError) as exc:
                raise ArtifactError(f"The model at {path!r} has no readable {name} ({exc}).") from None

        return read
    root = Path(path.removeprefix("file://")).expanduser()
    if not root.exists():
        raise ArtifactError(f"No saved model at {str(root)!r}: the folder does not exist.")
    if not root.is_dir():
        raise ArtifactError(f"{str(root)!r} is a file; a saved model is a folder with manifest.json.")

    def read(name: str) -> bytes:
        f = root / name
        if not f.is_file():
            raise ArtifactError(f"The model folder {str(root)!r} has no {name}: it is incomplete or not a model.")
        return f.read_bytes()

    return read


def _decode(name: str, blob: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{name} of the model at {where!r} is corrupted: not valid JSON ({exc}).") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{name} of the model at {where!r} is corrupted: expected a JSON object.")
    return doc


def _extra_name(name: str) -> str:
    """An extra file's name, refused if it could escape the artifact's ``files/`` folder."""
    parts = name.replace("\\", "/").split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ArtifactError(f"An artifact's extra file needs a relative name without '..'; got {name!r}.")
    return "/".join(parts)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved model's manifest (format, modality, model, files), read and checked alone (no weights read)."""
    manifest = _decode("manifest.json", _reader(str(path))("manifest.json"), str(path))
    if manifest.get("format") != FORMAT_NAME:
        raise ArtifactError(f"{str(path)!r} is not a model saved by this engine (manifest format {manifest.get('format')!r}).")
    return manifest


def read_model_name(path: str | os.PathLike[str]) -> str:
    """The model name a saved artifact holds, from its manifest alone (no weights read)."""
    return str(read_manifest(path).get("model"))


def _checked(read, manifest: Mapping[str, Any], where: str):
    """``read`` that compares each file with the digest the manifest recorded (saves from before digests pass)."""
    digests = manifest.get("sha256") or {}

    def read_checked(name: str, check: Callable[[bytes], Any] | None = None) -> bytes:
        blob = read(name)
        if check is not None:
            check(blob)  # the format's own error is the more precise one when the content is unreadable
        expected = digests.get(name)
        if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
            raise ArtifactError(
                f"{name} of the model at {where!r} does not match the digest in its manifest: it was changed or "
                "damaged after the model was saved."
            )
        return blob

    return read_checked


def load_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Read a saved model, checking its format and version; never unpickles."""
    path = str(path)
    read = _reader(path)
    manifest = _decode("manifest.json", read("manifest.json"), path)
    if manifest.get("format") != FORMAT_NAME:
        raise ArtifactError(f"{path!r} is not a model saved by this engine (manifest format {manifest.get('format')!r}).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"The model at {path!r} uses artifact format version {version!r}; this engine "
            f"({engine_version()}) reads version {FORMAT_VERSION}. Re-save it with a matching engine version."
        )
    read = _checked(read, manifest, path)
    docs = {name: _decode(name, read(name, lambda blob, name=name: _decode(name, blob, path)), path) for name in JSON_FILES}
    try:
        tensors = load_safetensors(read(WEIGHTS_FILE, load_safetensors))
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{WEIGHTS_FILE} of the model at {path!r} is corrupted ({exc}).") from None
    prefix = f"{EXTRA_FILES_DIR}/"
    extra = {name[len(prefix):]: read(name) for name in manifest.get("files", []) if name.startswith(prefix)}
    config = dict(docs["config.json"])
    model = config.pop("model", manifest.get("model"))
    config.pop("modality", None)
    return Artifact(
        model=str(model),
        modality=str(manifest.get("modality") or ""),
        config=config,
        schema=docs["schema.json"],
        preprocessor=docs["preprocessor.json"],
        requirements=docs["requirements.json"],
        model_state=docs["model_state.json"],
        metrics=docs["metrics.json"],
        tensors=dict(tensors),
        files=extra,
        manifest=manifest,
    )


def list_artifacts(root: str | os.PathLike[str]) -> list[str]:
    """Names of the saved models directly under ``root`` (folders with a manifest)."""
    root = str(root)
    if _is_uri(root):
        filesystem, base = pafs.FileSystem.from_uri(root)
        infos = filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        names = []
        for info in infos:
            if info.type == pafs.FileType.Directory:
                if filesystem.get_file_info(f"{info.path}/manifest.json").type == pafs.FileType.File:
                    names.append(info.base_name)
        return sorted(names)
    base = Path(root).expanduser()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "manifest.json").is_file())
