"""The generation deployment: models loaded on demand from the store, multiplexed by model id.

Each replica keeps at most ``max_models_per_replica`` synthesizers loaded and
evicts the least recently used (Serve's model multiplexing, which also routes
a model's requests to the replicas that already hold it). A request produces
one chunk of samples: chunk ``k`` of a response is always
``sample_table(n, conditions=..., seed=seed, stream=k, row_offset=offset)``, so
the same seed gives the same samples whichever replica makes each chunk.

Models of every modality go through the same calls of the
:class:`~engine.core.synthesizer.Synthesizer` interface (``load_synthesizer``,
``coerce_conditions``, ``sample_table``, ``describe``, ``to_device``); this
module never asks which modality a model is.

Nothing a request sends can take a replica down: every method returns a
``Failure`` (status and message) instead of raising.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ray import serve

from engine.core.errors import ArtifactError, SynthError
from engine.core.registry import load_synthesizer
from engine.core.synthesizer import Synthesizer
from serve_apps.config import register_modalities
from serve_apps.errors import Failure, RequestRejected
from serve_apps.formats import table_to_ipc
from serve_apps.store import model_path

logger = logging.getLogger("ray.serve")


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars made plain and NaN/inf made ``None`` (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _use_gpu_if_present(synth: Synthesizer) -> str:
    """Move a torch model to this replica's GPU when Serve gave it one; return the device used."""
    import ray
    import torch

    return synth.to_device("cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu")


def describe_model(model_id: str, synth: Synthesizer) -> dict[str, Any]:
    """The model card of a loaded model (its modality's ``describe()``), with its id, made JSON-safe."""
    return json_safe({"id": model_id, **synth.describe()})


@serve.deployment(name="Generator")
class Generator:
    """Holds synthesizers from the store and generates chunks of samples on request."""

    def __init__(
        self, *, models_dir: str, max_models_per_replica: int, failed_load_retry_s: float, modalities: Sequence[str] = ()
    ):
        register_modalities(modalities)  # before any load: a plugin model's manifest names its modality
        self.models_dir = models_dir
        self.failed_load_retry_s = failed_load_retry_s
        # model id -> (monotonic time of the failure, message): answered 503 without retrying for a while,
        # because Serve evicts the least recently used model before every load attempt.
        self._failed: dict[str, tuple[float, str]] = {}

        async def load(model_id: str) -> Synthesizer:
            return await self._load(model_id)

        # Built here, not as a decorated method, so the cache size comes from the application's arguments.
        self.max_models_per_replica = max_models_per_replica
        self._load_fn = load
        self._get_model = serve.multiplexed(max_num_models_per_replica=max_models_per_replica)(load)

    def loaded_models(self) -> list[str] | None:
        """Ids of the models this replica holds, least recently used first, as Serve's own LRU cache has them.

        Read from Serve's cache (a private attribute it sets on the loader), so the
        figure is the real one, not a copy of the policy; ``None`` if a Serve
        version keeps it elsewhere.
        """
        wrapper = getattr(self._load_fn, "__serve_multiplex_wrapper", None)
        models = getattr(wrapper, "models", None)
        return list(models) if models is not None else None

    async def _load(self, model_id: str) -> Synthesizer:
        path = model_path(self.models_dir, model_id)
        started = time.perf_counter()
        synth = await asyncio.to_thread(load_synthesizer, path)
        device = _use_gpu_if_present(synth)
        logger.info("loaded model %r (%s) on %s in %.2fs", model_id, synth.model, device, time.perf_counter() - started)
        return synth

    async def _model(self, model_id: str) -> Synthesizer | Failure:
        failed = self._failed.get(model_id)
        if failed is not None and time.monotonic() - failed[0] < self.failed_load_retry_s:
            return Failure(503, failed[1])
        try:
            synth = await self._get_model(model_id)
        except RequestRejected as exc:
            return Failure(exc.status, exc.detail)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, the replica keeps serving
            reason = str(exc) if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
            message = f"Model {model_id!r} could not be loaded: {reason}"
            self._failed[model_id] = (time.monotonic(), message)
            logger.warning(message)
            return Failure(503, message)
        self._failed.pop(model_id, None)
        return synth

    async def stats(self) -> dict[str, Any]:
        """What this replica holds (``GET /v1/stats``)."""
        return {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "loaded_models": self.loaded_models(),
            "max_models_per_replica": self.max_models_per_replica,
        }

    async def describe(self) -> dict[str, Any] | Failure:
        """The model card of the request's model (``GET /v1/models/{id}``)."""
        model_id = serve.get_multiplexed_model_id()
        synth = await self._model(model_id)
        if isinstance(synth, Failure):
            return synth
        try:
            return describe_model(model_id, synth)
        except Exception as exc:  # noqa: BLE001
            logger.exception("describing model %r failed", model_id)
            return Failure(500, f"Describing model {model_id!r} failed: {type(exc).__name__}: {exc}")

    async def chunk(
        self, index: int, num_rows: int, row_offset: int, conditions: Any, seed: int
    ) -> bytes | Failure:
        """Chunk ``index`` of a response: ``num_rows`` samples as Arrow IPC bytes.

        ``conditions`` are as the client sent them (JSON); the model's
        ``coerce_conditions`` matches them to what it knows, and sampling
        validates them (a SynthError, answered 422, says what is valid).
        """
        model_id = serve.get_multiplexed_model_id()
        synth = await self._model(model_id)
        if isinstance(synth, Failure):
            return synth

        def work() -> bytes:
            table = synth.sample_table(
                num_rows, conditions=synth.coerce_conditions(conditions), seed=seed, stream=index, row_offset=row_offset
            )
            return table_to_ipc(table)

        try:
            return await asyncio.to_thread(work)
        except SynthError as exc:
            return Failure(422, str(exc))
        except Exception as exc:  # noqa: BLE001
            logger.exception("sampling model %r failed", model_id)
            return Failure(500, f"Sampling model {model_id!r} failed: {type(exc).__name__}: {exc}")
