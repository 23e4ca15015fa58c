"""What a request may name: model ids in the store and tables under the data root.

Both are checked here, once, so that no request reaches a file outside the
model store or the data root, whatever it puts in a path.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from engine.core.errors import SynthError
from engine.core.registry import Modality, UnknownModelError, get_modality, modality_for_model
from engine.store.artifact import list_artifacts, read_manifest
from serve_apps.errors import RequestRejected

# Letters, digits, '.', '_' and '-'; no separators, so an id names one folder directly under the store.
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A listing is trusted this long; an unknown id forces a fresh one at most once per MIN_REFRESH_S.
LISTING_TTL_S = 5.0
MIN_REFRESH_S = 1.0


def check_model_id(model_id: str) -> str:
    """``model_id`` if it can name a folder of the store, else a 422 naming the rule."""
    if not MODEL_ID.fullmatch(model_id) or ".." in model_id:
        raise RequestRejected(
            422,
            f"Invalid model id {model_id[:140]!r}: an id is 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/' and no '..').",
        )
    return model_id


def model_path(models_dir: str, model_id: str) -> str:
    """Location of a (validated) model id inside the store; never outside it."""
    check_model_id(model_id)
    if "://" in models_dir and not models_dir.startswith("file://"):
        return f"{models_dir.rstrip('/')}/{model_id}"
    root = Path(models_dir.removeprefix("file://")).expanduser().resolve()
    path = (root / model_id).resolve()
    # A symlink inside the store could still point elsewhere.
    if not path.is_relative_to(root) or path == root:
        raise RequestRejected(404, f"No model {model_id!r} in the store.")
    return str(path)


class StoreIndex:
    """A cached listing of the model store, refreshed when stale or when an unknown id is asked for,
    and each model's modality, read from its manifest and looked up in the registry.

    Args:
        models_dir: the store (a folder or URI).
        clock: seconds from an arbitrary start, for the listing's age; ``time.monotonic``
            unless a test drives time itself.
    """

    def __init__(self, models_dir: str, *, clock: Callable[[], float] = time.monotonic):
        self.models_dir = models_dir
        self._clock = clock
        self._names: list[str] = []
        self._listed_at = -float("inf")
        # model id -> (manifest signature, the modality or the 503 message): a manifest is read again only
        # when its signature changes, so a request costs one stat, not a JSON parse.
        self._modality: dict[str, tuple[object, Modality | str]] = {}

    def _refresh(self) -> None:
        self._names = list_artifacts(self.models_dir)
        self._listed_at = self._clock()

    def names(self) -> list[str]:
        """Ids of the saved models in the store (at most ``LISTING_TTL_S`` old)."""
        if self._clock() - self._listed_at > LISTING_TTL_S:
            self._refresh()
        return list(self._names)

    def require(self, model_id: str) -> str:
        """``model_id`` if it is a saved model in the store; 422 for a malformed id, 404 for an unknown one."""
        check_model_id(model_id)
        if model_id in self.names():
            return model_id
        if self._clock() - self._listed_at > MIN_REFRESH_S:
            self._refresh()
            if model_id in self._names:
                return model_id
        known = ", ".join(repr(n) for n in self._names[:50]) or "none"
        raise RequestRejected(404, f"No model {model_id!r} in the store. Models available: {known}.")

    def _manifest_signature(self, path: str) -> object:
        """What changes when the manifest is rewritten: (mtime, size) locally; on remote stores, where a
        stat is a network round trip, the listing's age slot, so a change shows within LISTING_TTL_S."""
        if "://" in self.models_dir and not self.models_dir.startswith("file://"):
            return int(self._clock() // LISTING_TTL_S)
        try:
            st = (Path(path) / "manifest.json").stat()
        except OSError as exc:
            return ("unreadable", type(exc).__name__)
        return (st.st_mtime_ns, st.st_size)

    def modality(self, model_id: str) -> Modality:
        """The registered modality of a model already checked by ``require``.

        The manifest names it (saves from before modalities were recorded name
        only the model, whose modality the registry knows). A manifest that
        cannot be read, or names a modality this server does not know (a plugin
        not listed in ``modalities``), is a 503 naming the model: the model
        cannot be served, but the request was fine and other models are.
        """
        path = model_path(self.models_dir, model_id)
        signature = self._manifest_signature(path)
        cached = self._modality.get(model_id)
        if cached is None or cached[0] != signature:
            try:
                manifest = read_manifest(path)
                name = manifest.get("modality")
                value: Modality | str = get_modality(name) if name else modality_for_model(str(manifest.get("model")))
            except (SynthError, OSError, ValueError) as exc:  # ValueError: bytes that are not UTF-8
                reason = str(exc) if isinstance(exc, SynthError) else f"manifest.json is unreadable ({type(exc).__name__}: {exc})"
                if isinstance(exc, UnknownModelError):
                    reason += " A Serve application serves a plugin modality listed in its 'modalities' argument."
                value = f"Model {model_id!r} cannot be served: {reason}"
            self._modality[model_id] = cached = (signature, value)
        if isinstance(cached[1], str):
            raise RequestRejected(503, cached[1])
        return cached[1]


def resolve_data_path(data_root: str | None, reference: str, field: str) -> str:
    """The file a ``/v1/evaluate`` reference names, which must lie inside ``data_root``."""
    if data_root is None:
        raise RequestRejected(
            422,
            f"{field!r} is given by reference ({reference[:200]!r}) but this server has no data_root: "
            "upload the table instead, or start the server with a data_root.",
        )
    rel = PurePosixPath(reference)
    if rel.is_absolute() or ".." in rel.parts or not reference.strip():
        raise RequestRejected(
            422,
            f"{field!r} must be a path relative to the server's data root, without '..'; got {reference[:200]!r}.",
        )
    root = Path(data_root).expanduser().resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise RequestRejected(422, f"{field!r} ({reference[:200]!r}) points outside the server's data root.")
    if not path.exists():
        raise RequestRejected(404, f"{field!r}: no file or folder {reference[:200]!r} under the server's data root.")
    return str(path)
