"""The front door every modality extends: ``fit``, ``sample``, ``evaluate``, ``save``, ``load``.

What is the same for tables, images and every later modality lives here,
written once: the model name and its hyperparameters checked against the
registry, seeds, the hand-off of encoded data to the one training loop, the
artifact written and read, and the conversation with the interfaces (the
CLI, the jobs, the Serve app, the sharded sampler), which only ever see this
class. A modality's synthesizer fills in the parts that depend on its data:
reading and encoding it, drawing samples, and what it keeps in the artifact.

The interfaces rely on these methods of every front door:

- ``sample_table(n, conditions=, seed=, stream=, row_offset=)``: one chunk or
  shard of samples as an Arrow table (what Parquet shards and HTTP answers are
  made of);
- ``parse_conditions(conditions)``: validate a request before any work starts;
- ``conditions_from_strings(["col=value", ...])``: conditions typed on a
  command line or in a job config;
- ``write_samples(table, out, format)`` and ``describe()``.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from engine.core.errors import ArtifactError, InvalidOptionError, NotFittedError, SynthError
from engine.core.params import check_model_config
from engine.core.registry import Modality, get_modality
from engine.store.artifact import Artifact, load_artifact, save_artifact


class Synthesizer(ABC):
    """Base of every modality's front door.

    Args:
        model: a model name the modality offers.
        model_config: the model's hyperparameters; unknown names and values
            outside their rules are refused here, before any data is read.
        num_workers, use_gpu, cpus_per_worker: how Ray Train scales training
            (``use_gpu=None`` picks a GPU when there is one).

    Subclasses set ``modality`` (the registered name) and ``default_epochs`` /
    ``default_batch_size`` per model, and implement the abstract methods.
    """

    modality: ClassVar[str]
    default_epochs: ClassVar[Mapping[str, int]] = {}
    default_batch_size: ClassVar[Mapping[str, int]] = {}

    def __init__(
        self,
        model: str,
        *,
        model_config: Mapping[str, Any] | None = None,
        num_workers: int = 1,
        use_gpu: bool | None = None,
        cpus_per_worker: float | None = None,
    ):
        from engine.training.config import ScalingOptions

        models = self.modality_info().models
        if model not in models:
            raise InvalidOptionError(
                f"The 'model' parameter of {type(self).__name__} must be one of {', '.join(map(repr, models))}. "
                f"Got {model!r} instead."
            )
        self.model = model
        self.model_config = dict(model_config or {})
        self._config_object()  # fail early on an unknown or out-of-range hyperparameter
        self.scaling = ScalingOptions(num_workers=num_workers, use_gpu=use_gpu, cpus_per_worker=cpus_per_worker)
        self.training_options_: dict[str, Any] = {}
        self.history_: list[dict[str, float]] = []

    # ------------------------------------------------------------ registry
    @classmethod
    def modality_info(cls) -> Modality:
        """This front door's entry in the registry."""
        return get_modality(cls.modality)

    def model_class(self) -> type:
        return self.modality_info().model_class(self.model)

    def _config_object(self) -> Any:
        """The model's config built from ``model_config``, or an error naming the bad key or value."""
        return check_model_config(self.model_class(), self.model_config, owner=f"{type(self).__name__}(model={self.model!r})")

    # ------------------------------------------------------------ training
    def _train_torch(
        self,
        *,
        layout: Any,
        data: Any,
        epochs: int | None,
        batch_size: int | None,
        seed: int,
        checkpoint_every: int = 10,
        storage_path: str | None = None,
        run_name: str | None = None,
        max_failures: int = 0,
        show_progress: bool = True,
        **train_options: Any,
    ) -> Any:
        """Train this synthesizer's torch model on encoded ``data`` with the one Ray Train loop; return the model.

        ``data`` is what the model's batch sampler reads (an array of encoded
        samples, a dict of arrays, or a Ray Dataset); ``layout`` describes it
        (``model_class.layout_class``). The history and options are kept on ``self``.
        """
        from engine.core.runtime import ray_session
        from engine.training.config import TrainOptions
        from engine.training.loop import train_torch_model

        model_cls = self.model_class()
        options = TrainOptions(
            epochs=epochs if epochs is not None else self.default_epochs.get(self.model, 10),
            batch_size=batch_size if batch_size is not None else self.default_batch_size.get(self.model, 64),
            seed=seed,
            checkpoint_every=checkpoint_every,
            storage_path=storage_path,
            run_name=run_name,
            max_failures=max_failures,
            show_progress=show_progress,
            **train_options,
        )
        config = self._config_object()
        model = model_cls(config, layout)  # built here too, so that a bad size fails before Ray starts
        with ray_session():
            result = train_torch_model(
                model_name=self.model,
                model_class=model_cls,
                model_config=asdict(config),
                layout=layout,
                data=data,
                options=options,
                scaling=self.scaling,
            )
        model.load_state_tensors(result.state_tensors)
        model.load_extra_state(result.extra_state)
        self.training_options_ = asdict(options)
        self.history_ = list(result.history)
        return model

    # ------------------------------------------------------------ sampling
    @abstractmethod
    def sample_table(
        self, num_rows: int, *, conditions: Any = None, seed: int, stream: int = 0, row_offset: int = 0
    ) -> pa.Table:
        """``num_rows`` samples as an Arrow table: one shard of the sharded sampler, one chunk of an HTTP answer."""

    @abstractmethod
    def parse_conditions(self, conditions: Any) -> Any:
        """Validate sampling conditions against what the model learned (raises with what is valid)."""

    def conditions_from_strings(self, items: Sequence[str]) -> Any:
        """Conditions typed as text (``"column=value"``, ``"age>=30"``) on a command line or in a config."""
        from engine.core.conditions import parse_condition_strings

        return parse_condition_strings(items)

    def coerce_conditions(self, conditions: Any) -> Any:
        """Conditions as a client sent them (JSON), matched loosely to what the model knows; validated later."""
        return conditions or None

    def write_samples(self, table: pa.Table, out: str, format: str | None = None) -> str:
        """Write samples (as :meth:`sample_table` gives them) to ``out``; return a line saying what was written."""
        from engine.core.outputs import write_table

        return write_table(table, out, format, unit=self.modality_info().unit)

    def describe(self) -> dict[str, Any]:
        """The model card: what the model is, what it was trained on, how to ask it for samples."""
        self._require_fitted()
        history = self.history_
        return {
            "model": self.model,
            "modality": self.modality,
            "formats": list(self.modality_info().formats),
            "training": self.training_options_,
            "metrics": {"epochs_trained": len(history), "last_epoch": history[-1] if history else None, "history": history},
        }

    def to_device(self, device: str) -> str:
        """Move the model to ``device`` (``"cpu"``, ``"cuda"``); return the device it now runs on."""
        return "cpu"

    @abstractmethod
    def _require_fitted(self) -> Any:
        """The fitted state, or :class:`NotFittedError`."""

    def _not_fitted(self) -> NotFittedError:
        return NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(...) or load(path) first.")

    # ------------------------------------------------------------ evaluate
    def evaluate(self, real_data: Any, synthetic_data: Any = None, **options: Any) -> Any:
        """The modality's evaluation report of ``synthetic_data`` against ``real_data``."""
        return self.modality_info().evaluate(real_data, synthetic_data, **options)

    # ------------------------------------------------------------ save/load
    @abstractmethod
    def _artifact(self) -> Artifact:
        """Everything a load needs, as an artifact (``model``, ``modality`` and scaling are filled in by ``save``)."""

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the fitted synthesizer to a folder (or cloud URI) of JSON, safetensors and listed extra files."""
        self._require_fitted()
        artifact = self._artifact()
        artifact.model = self.model
        artifact.modality = self.modality
        artifact.config = {
            "model_config": self._saved_model_config(),
            "training": self.training_options_,
            "scaling": asdict(self.scaling),
            **artifact.config,
        }
        artifact.metrics = {"history": self.history_, **artifact.metrics}
        return save_artifact(artifact, path)

    def _saved_model_config(self) -> dict[str, Any]:
        return asdict(self._config_object())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Synthesizer:
        """Read a synthesizer saved by :meth:`save` (never unpickles); damaged parts are named."""
        art = load_artifact(path)
        if art.model not in cls.modality_info().models or (art.modality and art.modality != cls.modality):
            raise ArtifactError(
                f"The model at {str(path)!r} is a {art.model!r} ({art.modality or 'unknown'} modality), not a model of "
                f"{cls.__name__} ({', '.join(cls.modality_info().models)}). load_synthesizer(path) loads any model."
            )
        try:
            with reading("content"):
                synth = cls._from_artifact(art)
        except DamagedPart as exc:
            raise ArtifactError(
                f"The model at {str(path)!r} is damaged or not in this engine's format: its {exc.part} cannot be read "
                f"({type(exc.cause).__name__}: {exc.cause})."
            ) from None
        synth.training_options_ = dict(art.config.get("training", {}))
        synth.history_ = list(art.metrics.get("history", []))
        return synth

    @classmethod
    @abstractmethod
    def _from_artifact(cls, art: Artifact) -> Synthesizer:
        """A fitted synthesizer rebuilt from a loaded artifact."""


def random_seed() -> int:
    """A fresh seed, for a call that was given none."""
    return int(np.random.SeedSequence().generate_state(1)[0])


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or a fresh one when None; anything else is refused."""
    if seed is None:
        return random_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidOptionError(f"The 'seed' parameter must be an integer or None. Got {seed!r} instead.")
    return int(seed)


def check_count(value: Any, name: str = "num_samples", *, minimum: int = 1) -> int:
    """``value`` as an int, refused unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidOptionError(f"The {name!r} parameter must be an integer >= {minimum}. Got {value!r} instead.")
    return int(value)


class DamagedPart(ArtifactError):
    """A part of a loaded artifact could not be read; :meth:`Synthesizer.load` names the model and the part."""

    def __init__(self, part: str, cause: BaseException):
        super().__init__(f"{part}: {type(cause).__name__}: {cause}")
        self.part, self.cause = part, cause


@contextmanager
def reading(part: str) -> Iterator[None]:
    """Errors raised while rebuilding ``part`` of an artifact (``"schema.json"``) are reported as that part's."""
    try:
        yield
    except DamagedPart:
        raise
    except ArtifactError as exc:
        raise DamagedPart(part, exc) from None
    except (SynthError, KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        raise DamagedPart(part, exc) from None
