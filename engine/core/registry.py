"""The registry of modalities and their models: explicit, by name, imported on first use.

A modality (tables, images, ...) is described once by a :class:`Modality`: its
name, its front door (a :class:`~engine.core.synthesizer.Synthesizer`
subclass), the models it offers, the output formats it answers in and its
evaluator. The CLI, ``jobs/``, ``serve_apps/`` and :func:`load_synthesizer`
look a modality up here, by the model name a user gives or the modality a
saved manifest records, and never branch on modalities themselves.

Classes are named as ``"module:attribute"`` strings and imported when first
asked for, so a process that samples a CTGAN never imports diffusers.

Where modalities come from, in order:

1. the engine's own (``BUILTIN_MODALITIES``);
2. installed plugins: entry points of the group ``synth_engine.modalities``
   whose objects are :class:`Modality` instances;
3. ``SYNTH_MODALITIES``: a comma-separated list of ``module:attribute``
   naming :class:`Modality` objects, for processes started by a tool
   (a CLI call, a job) that should know a modality not installed as a plugin;
4. :func:`register_modality`, in the running process.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from engine.core.errors import ArtifactError, SynthError

if TYPE_CHECKING:
    from engine.core.synthesizer import Synthesizer

ENTRY_POINT_GROUP = "synth_engine.modalities"
ENV_VARIABLE = "SYNTH_MODALITIES"

# The engine's own modalities: name -> where its Modality object lives.
BUILTIN_MODALITIES: dict[str, str] = {
    "table": "engine.tabular.modality:MODALITY",
    "image": "engine.images.modality:MODALITY",
    "timeseries": "engine.timeseries.modality:MODALITY",
    "text": "engine.text.modality:MODALITY",
    "audio": "engine.audio.modality:MODALITY",
}


class UnknownModelError(SynthError, ValueError):
    """No model or modality of that name."""


def resolve(reference: str | Any) -> Any:
    """The object a ``"module:attribute"`` string names (anything else is returned as it is)."""
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise SynthError(f"{reference!r} does not name an object: expected 'package.module:attribute'.")
    try:
        return getattr(import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise SynthError(f"Cannot import {reference!r}: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Modality:
    """One kind of data the engine synthesizes, and everything the interfaces need to know of it.

    Attributes:
        name: the modality's name, recorded in every saved model's manifest.
        synthesizer: the front door class (or ``"module:Class"``).
        models: model name -> model class (or ``"module:Class"``); torch models
            are trained by the engine's loop, other classes fit directly.
        formats: output formats of samples, the default first (``"parquet"``,
            ``"json"``, ``"csv"``, ``"zip"``, ``"png"``, ...): what the CLI
            writes and the Serve app answers in.
        unit: what one sample is called in messages (``"row"``, ``"image"``).
        evaluator: ``evaluate(real, synthetic, **options) -> report`` (or
            ``"module:function"``); None when the modality has none yet.
        description: one line for ``synth --help`` and the docs.
    """

    name: str
    synthesizer: Any
    models: Mapping[str, Any]
    formats: tuple[str, ...] = ("parquet",)
    unit: str = "sample"
    evaluator: Any = None
    description: str = ""

    def synthesizer_class(self) -> type[Synthesizer]:
        return resolve(self.synthesizer)

    def model_class(self, model: str) -> type:
        try:
            return resolve(self.models[model])
        except KeyError:
            raise UnknownModelError(
                f"The {self.name} modality has no model {model!r}; it offers {', '.join(map(repr, self.models))}."
            ) from None

    def evaluate(self, real: Any, synthetic: Any, **options: Any) -> Any:
        if self.evaluator is None:
            raise SynthError(f"The {self.name} modality has no evaluator yet.")
        return resolve(self.evaluator)(real, synthetic, **options)


@dataclass
class ModalityRegistry:
    """Modalities by name, filled from the built-ins, plugins and explicit registrations.

    One instance, :data:`REGISTRY`, serves the whole engine; tests may build their own.
    """

    builtin: Mapping[str, str] = field(default_factory=lambda: dict(BUILTIN_MODALITIES))
    _registered: dict[str, Modality] = field(default_factory=dict)
    _loaded: dict[str, Modality] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, modality: Modality) -> None:
        """Add ``modality`` (or replace the one of the same name) in this process."""
        if not isinstance(modality, Modality):
            raise SynthError(f"register_modality takes a Modality; got {type(modality).__name__}.")
        with self._lock:
            self._registered[modality.name] = modality

    def unregister(self, name: str) -> None:
        with self._lock:
            self._registered.pop(name, None)

    def _discovered(self) -> dict[str, Modality]:
        """Built-ins and plugins (read once per process; the environment variable each time)."""
        if self._loaded is None:
            found = {name: _as_modality(resolve(ref), ref) for name, ref in self.builtin.items()}
            from importlib.metadata import entry_points

            for ep in entry_points(group=ENTRY_POINT_GROUP):
                modality = _as_modality(ep.load(), f"entry point {ep.name!r} ({ep.value})")
                found.setdefault(modality.name, modality)
            self._loaded = found
        extra = {}
        for ref in filter(None, (r.strip() for r in os.environ.get(ENV_VARIABLE, "").split(","))):
            modality = _as_modality(resolve(ref), f"{ENV_VARIABLE} entry {ref!r}")
            extra[modality.name] = modality
        return {**self._loaded, **extra}

    def all(self) -> dict[str, Modality]:
        """Every modality known to this process, by name."""
        with self._lock:
            registered = dict(self._registered)
        return {**self._discovered(), **registered}

    def get(self, name: str) -> Modality:
        known = self.all()
        try:
            return known[name]
        except KeyError:
            raise UnknownModelError(
                f"Unknown modality {name!r}; this engine knows {', '.join(map(repr, known))}. A modality from a plugin "
                f"must be installed (entry point group {ENTRY_POINT_GROUP!r}) or named in ${ENV_VARIABLE}."
            ) from None

    def model_names(self) -> dict[str, str]:
        """Every model name -> the name of its modality."""
        return {model: m.name for m in self.all().values() for model in m.models}

    def for_model(self, model: str) -> Modality:
        """The modality that offers the model ``model``."""
        for modality in self.all().values():
            if model in modality.models:
                return modality
        raise UnknownModelError(
            f"Unknown model {model!r}; the models are: "
            + "; ".join(f"{m.name}: {', '.join(m.models)}" for m in self.all().values())
            + "."
        )


def _as_modality(obj: Any, where: str) -> Modality:
    if not isinstance(obj, Modality):
        raise SynthError(f"{where} names a {type(obj).__name__}, not an engine.core.registry.Modality.")
    return obj


REGISTRY = ModalityRegistry()


def register_modality(modality: Modality) -> None:
    """Make ``modality`` known to this process (see the module docs for plugins and other processes)."""
    REGISTRY.register(modality)


def unregister_modality(name: str) -> None:
    """Forget a modality registered with :func:`register_modality`."""
    REGISTRY.unregister(name)


def get_modality(name: str) -> Modality:
    """The modality called ``name``."""
    return REGISTRY.get(name)


def modality_for_model(model: str) -> Modality:
    """The modality that offers the model ``model`` (``"ctgan"`` -> tables)."""
    return REGISTRY.for_model(model)


def get_model_class(model: str) -> type:
    """The class registered as ``model``, in whichever modality offers it."""
    return modality_for_model(model).model_class(model)


def load_synthesizer(path: str | os.PathLike[str]) -> Synthesizer:
    """Load any saved synthesizer: its manifest names the modality (or, for older saves, the model)."""
    from engine.store.artifact import read_manifest

    manifest = read_manifest(path)
    name = manifest.get("modality")
    try:
        modality = get_modality(name) if name else modality_for_model(str(manifest.get("model")))
    except UnknownModelError as exc:
        raise ArtifactError(f"The model at {str(path)!r} cannot be loaded here: {exc}") from None
    return modality.synthesizer_class().load(path)
