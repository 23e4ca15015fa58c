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
- ``write_samples(table, out, format)`` and ``describe()``;
- ``cli_options()``: the modality's own options (a table's column kinds, an
  image's size), declared as :class:`FrontDoorOption` so that the CLI and the
  job configs offer and check them without knowing the modality, and
  ``fit_with_options(...)``, which hands each option to the constructor or to
  ``fit``, wherever the front door takes it.
"""
from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from engine.core.errors import ArtifactError, InvalidOptionError, NotFittedError, SynthError
from engine.core.params import check_model_config
from engine.core.registry import REGISTRY, Modality, get_modality
from engine.store.artifact import Artifact, load_artifact, save_artifact


OptionStage = Literal["init", "fit", "sample"]
# The epoch cap of a run given a time budget and no epochs (nor max_steps): the budget, not the cap, ends it.
BUDGET_EPOCHS = 100_000


@dataclass(frozen=True)
class FrontDoorOption:
    """One option of a modality's front door, declared so interfaces offer and check it without naming the modality.

    The CLI adds every modality's declared options to its parser (a group per
    modality) and the job configs accept them at their keys; both refuse an
    option given for a model of another modality, naming the option and the
    modality that takes it.

    Attributes:
        name: the keyword the front door takes: of its constructor (``stage="init"``),
            of ``fit`` (``"fit"``), or an attribute set on a loaded synthesizer
            before it samples (``"sample"``, e.g. ``sampling_precision``).
        help: one line for ``--help``.
        stage: where the value goes (see ``name``).
        type: the type of one value (``int``, ``float``, ``str``, ``dict``): reads
            command-line text and checks the values of a job config.
        many: the value is a list of ``type``; on the command line the flag may
            repeat and takes comma-separated values.
        choices: the values allowed, when they are few.
        flag: the command-line flag (default: ``--`` and ``name`` with dashes).
        config_key: the dotted key in a job config (default: ``name``).
        read_text: how command-line text becomes the value when that is more than
            ``type`` (e.g. a file name read into a list of rules); its errors are
            :class:`SynthError` naming the file.
        metavar: the placeholder of the value in ``--help``.
    """

    name: str
    help: str
    stage: OptionStage = "fit"
    type: Callable[[Any], Any] = str
    many: bool = False
    choices: tuple[Any, ...] | None = None
    flag: str | None = None
    config_key: str | None = None
    read_text: Callable[[str], Any] | None = None
    metavar: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The option's key in a job config."""
        return self.config_key or self.name

    def from_text(self, text: str) -> Any:
        """The value command-line ``text`` gives (for ``many``: the list of its comma-separated values)."""
        if self.read_text is not None:
            return self.read_text(text)
        if self.many:
            return [self._one(part.strip(), self.cli_flag) for part in text.split(",") if part.strip()]
        return self._one(text, self.cli_flag)

    def check(self, value: Any, where: str | None = None) -> Any:
        """``value`` (from a job config, a request) as this option takes it, or an error naming ``where``."""
        where = where or repr(self.key)
        if value is None:
            return None
        if self.many:
            # A config may give one comma-separated string where a list is expected, as the command line does.
            items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise InvalidOptionError(f"{where} must be a list of {self._type_name(plural=True)}. Got {value!r} instead.")
            return [self._one(v, where) for v in items]
        return self._one(value, where)

    def _type_name(self, plural: bool = False) -> str:
        names = {int: ("an integer", "integers"), float: ("a number", "numbers"), str: ("a string", "strings"),
                 dict: ("a mapping", "mappings"), bool: ("true or false", "booleans")}
        default = getattr(self.type, "__name__", str(self.type))
        return names.get(self.type, (f"a {default}", f"{default} values"))[plural]

    def _one(self, value: Any, where: str) -> Any:
        expected = self.type
        wrong_type = isinstance(expected, type) and not isinstance(value, expected)
        if wrong_type or (isinstance(value, bool) and expected is not bool):  # True is an int to Python, not to a user
            # Text (a flag, an environment) is read as the type; other types are not guessed at.
            convertible = isinstance(value, str) or (expected is float and isinstance(value, int) and not isinstance(value, bool))
            try:
                if not convertible:
                    raise TypeError
                value = expected(value)
            except (TypeError, ValueError):
                raise InvalidOptionError(f"{where} must be {self._type_name()}. Got {value!r} instead.") from None
        if self.choices is not None and value not in self.choices:
            raise InvalidOptionError(f"{where} must be one of {', '.join(map(repr, self.choices))}. Got {value!r} instead.")
        return value


def declared_options(stages: Collection[str] = ("init", "fit", "sample")) -> list[tuple[Modality, FrontDoorOption]]:
    """Every known modality's declared options of ``stages``, with the modality declaring each.

    A modality whose front door cannot be imported here (a plugin missing a
    dependency) declares nothing: its options are refused like unknown ones,
    and using its models reports the import error itself.
    """
    found: list[tuple[Modality, FrontDoorOption]] = []
    for modality in REGISTRY.all().values():
        try:
            options = modality.synthesizer_class().cli_options()
        except SynthError:
            continue
        found.extend((modality, option) for option in options if option.stage in stages)
    return found


def _named_parameters(function: Callable[..., Any]) -> tuple[set[str], bool]:
    """The keyword names ``function`` takes, and whether it takes any other keyword (``**kwargs``)."""
    params = inspect.signature(function).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


class Synthesizer(ABC):
    """Base of every modality's front door.

    Args:
        model: a model name the modality offers.
        model_config: the model's hyperparameters; unknown names and values
            outside their rules are refused here, before any data is read.
        num_workers, use_gpu, cpus_per_worker: how Ray Train scales training
            (``use_gpu=None`` picks a GPU when there is one).
        pretrained: a local folder or hub id whose weights training starts from
            (see ``TorchSynthModel.from_pretrained``); None: the model's own initialisation.

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
        pretrained: str | os.PathLike[str] | None = None,
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
        # Where training starts from: a local folder or hub id of the model's weights (see
        # TorchSynthModel.from_pretrained); None starts from the model's own initialisation.
        self.pretrained = None if pretrained is None else str(pretrained)
        self.training_options_: dict[str, Any] = {}
        self.history_: list[dict[str, float]] = []

    # ------------------------------------------------------------ registry
    @classmethod
    def modality_info(cls) -> Modality:
        """This front door's entry in the registry."""
        return get_modality(cls.modality)

    def model_class(self) -> type:
        return self.modality_info().model_class(self.model)

    # ------------------------------------------------------------ interfaces
    @classmethod
    def cli_options(cls) -> tuple[FrontDoorOption, ...]:
        """This modality's own options, offered by the CLI and the job configs (none here; front doors add theirs).

        Options every modality shares (epochs, seed, scaling, checkpoints,
        ``model_config``) are not declared: the interfaces offer those themselves.
        """
        return ()

    @classmethod
    def file_formats(cls) -> tuple[str, ...]:
        """The formats :meth:`write_samples` writes (default: the modality's output formats)."""
        return tuple(cls.modality_info().formats)

    @classmethod
    def fit_with_options(
        cls,
        model: str,
        data: Any,
        *,
        model_config: Mapping[str, Any] | None = None,
        num_workers: int = 1,
        use_gpu: bool | None = None,
        cpus_per_worker: float | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        training: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Synthesizer:
        """A ``model`` front door fitted on ``data``: what ``synth fit`` and ``jobs.train`` do, for any modality.

        Args:
            options: declared options (:meth:`cli_options`) by name; each goes
                to the constructor or to ``fit`` as its declaration says. An
                undeclared one is refused by name.
            training: the training loop's options (``checkpoint_every``,
                ``storage_path``, ``run_name``, ``max_failures``,
                ``show_progress``). Front doors take them in the constructor or
                in ``fit``; each goes to whichever names it (else to a ``fit``
                that takes ``**options``), so callers need not know which.
        """
        declared = {o.name: o for o in cls.cli_options() if o.stage in ("init", "fit")}
        init_kwargs: dict[str, Any] = {}
        fit_kwargs: dict[str, Any] = {}
        for name, value in (options or {}).items():
            if name not in declared:
                raise InvalidOptionError(
                    f"{cls.__name__} has no option {name!r}; its options are {', '.join(map(repr, declared)) or 'none'}."
                )
            (init_kwargs if declared[name].stage == "init" else fit_kwargs)[name] = value
        init_names, _ = _named_parameters(cls.__init__)
        fit_names, fit_takes_more = _named_parameters(cls.fit)  # type: ignore[attr-defined]
        for name, value in (training or {}).items():
            if name in init_names:
                init_kwargs[name] = value
            elif name in fit_names or fit_takes_more:
                fit_kwargs[name] = value
            else:
                raise InvalidOptionError(f"{cls.__name__} takes no training option {name!r}.")
        synth = cls(  # type: ignore[call-arg]
            model, model_config=model_config, num_workers=num_workers, use_gpu=use_gpu,
            cpus_per_worker=cpus_per_worker, **init_kwargs,
        )
        return synth.fit(data, epochs=epochs, batch_size=batch_size, seed=seed, **fit_kwargs)  # type: ignore[attr-defined]

    def set_sampling_options(self, options: Mapping[str, Any]) -> None:
        """Set declared ``"sample"`` options (by name) on this synthesizer before it samples; others are refused."""
        declared = {o.name: o for o in self.cli_options() if o.stage == "sample"}
        for name, value in options.items():
            if name not in declared:
                raise InvalidOptionError(
                    f"{type(self).__name__} has no sampling option {name!r}; "
                    f"its sampling options are {', '.join(map(repr, declared)) or 'none'}."
                )
            setattr(self, name, declared[name].check(value, repr(name)))

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
        validator: Any = None,
        **train_options: Any,
    ) -> Any:
        """Train this synthesizer's torch model on encoded ``data`` with the one Ray Train loop; return the model.

        ``data`` is what the model's batch sampler reads (an array of encoded
        samples, a dict of arrays, or a Ray Dataset); ``layout`` describes it
        (``model_class.layout_class``). The history and options are kept on ``self``.
        ``validator`` turns on early stopping (see ``train_torch_model``); ``train_options``
        go to ``TrainOptions`` (``time_budget``, ``validate_every``, ``patience``, ...).
        ``epochs=None`` means the model's default, or, with a ``time_budget`` and no
        ``max_steps``, :data:`BUDGET_EPOCHS`: the budget ends the run.
        """
        from engine.core.runtime import ray_session
        from engine.training.config import TrainOptions
        from engine.training.loop import train_torch_model

        model_cls = self.model_class()
        if epochs is None:
            # A time budget without epochs is meant to end the run itself: the epoch cap must not come first.
            by_budget = train_options.get("time_budget") is not None and train_options.get("max_steps") is None
            epochs = BUDGET_EPOCHS if by_budget else self.default_epochs.get(self.model, 10)
        options = TrainOptions(
            epochs=epochs,
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
        # Built here too, so that a bad size or unfitting pretrained weights fail before Ray starts.
        model = model_cls(config, layout) if self.pretrained is None else model_cls.from_pretrained(self.pretrained, config, layout)
        with ray_session():
            result = train_torch_model(
                model_name=self.model,
                model_class=model_cls,
                model_config=asdict(config),
                layout=layout,
                data=data,
                options=options,
                scaling=self.scaling,
                initial_state=None if self.pretrained is None else model.state_tensors(),
                validator=validator,
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
        from engine.training.selection import selection_summary

        history = self.history_
        selection = selection_summary(history)
        return {
            "model": self.model,
            "modality": self.modality,
            "formats": list(self.modality_info().formats),
            "training": self.training_options_,
            "metrics": {
                "epochs_trained": len(history), "last_epoch": history[-1] if history else None, "history": history,
                **({"selection": selection} if selection else {}),
            },
        }

    def to_device(self, device: str) -> str:
        """Move the model to ``device`` (``"cpu"``, ``"cuda"``); return the device it now runs on."""
        return "cpu"

    @abstractmethod
    def _require_fitted(self) -> Any:
        """The fitted state, or :class:`NotFittedError`."""

    def _not_fitted(self) -> NotFittedError:
        return NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(...) or load(path) first.")

    # ------------------------------------------------------- mixtures and augmentation
    def condition_values(self, column: str) -> list[Any]:
        """The values ``column`` (a table's category, an image's ``label``) can be conditioned on (front doors override)."""
        raise SynthError(f"{type(self).__name__} cannot list the values of {column!r} to condition on.")

    def count_values(self, table: pa.Table, column: str) -> dict[Any, int]:
        """How many samples of ``table`` (as :meth:`sample_table` gives them) have each value of ``column``, by the
        value :meth:`condition_values` lists (front doors whose tables hold codes map them back)."""
        from engine.core.mixtures import label_counts

        return label_counts(table, column)

    def read_samples(self, data: Any) -> pa.Table:
        """Real data (what ``fit`` reads) as the Arrow table :meth:`sample_table` returns (front doors override)."""
        raise SynthError(f"{type(self).__name__} cannot read real samples for augmentation.")

    def from_table(self, table: pa.Table) -> Any:
        """Samples as :meth:`sample_table` gives them, in the form ``sample`` returns (a DataFrame for tables)."""
        return table

    def sample_bounds(self, table: pa.Table) -> np.ndarray:
        """Where each sample of ``table`` starts, and its end: a sample may span rows (a sequence in long format)."""
        return np.arange(table.num_rows + 1)

    def class_fidelity(self, real: Any, synthetic: Any, column: str) -> dict[str, float]:
        """Fidelity of the synthetic samples of each value of ``column`` against the real ones of that value."""
        raise SynthError(f"{type(self).__name__} has no per-class fidelity.")

    def rebalance(
        self,
        target: str,
        num_rows: int,
        *,
        ratios: Mapping[Any, float] | None = None,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> Any:
        """``num_rows`` samples whose ``target`` values follow ``ratios`` (default: every value equally often).

        Each class is drawn by the modality's conditional sampling (rare classes
        included), so ``rebalance("fraud", 10_000, ratios={1: 0.5, 0: 0.5})``
        gives exactly 5,000 of each. ``ratios`` are normalised; a value not
        listed is not generated.
        """
        from engine.core.mixtures import combine, sample_groups

        seed = check_seed(seed)
        num_rows = check_count(num_rows, "num_rows")
        if ratios is None:
            ratios = {v: 1.0 for v in self.condition_values(target)}
        if not isinstance(ratios, Mapping) or not ratios:
            raise InvalidOptionError(f"The 'ratios' parameter must map values of {target!r} to shares. Got {ratios!r} instead.")
        groups = combine(num_rows, dict(conditions or {}), {target: dict(ratios)})
        return self.from_table(sample_groups(self, groups, seed=seed))

    def augment(
        self,
        original_data: Any,
        augmentation_factor: float = 2.0,
        *,
        preserve_distribution: bool = True,
        target: str | None = None,
        seed: int | None = None,
    ) -> Any:
        """The real samples plus synthetic ones, ``augmentation_factor`` times as many in all, marked in a ``source`` column.

        With ``target`` and ``preserve_distribution=True`` the synthetic samples
        keep the real class proportions; with ``preserve_distribution=False``
        they fill the classes up so that real plus synthetic are as balanced as
        the total allows. Without ``target`` the synthetic samples are drawn
        unconditionally (``preserve_distribution=False`` then needs a target).
        """
        from engine.core.mixtures import SOURCE_COLUMN, Group, allocate, sample_groups

        seed = check_seed(seed)
        if isinstance(augmentation_factor, bool) or not isinstance(augmentation_factor, (int, float)) or augmentation_factor < 1:
            raise InvalidOptionError(
                f"The 'augmentation_factor' parameter of augment must be a number >= 1. Got {augmentation_factor!r} instead."
            )
        real = self.read_samples(original_data)
        if SOURCE_COLUMN in real.column_names:
            raise InvalidOptionError(f"The original data already has a {SOURCE_COLUMN!r} column; augment() adds it.")
        firsts = real.take(pa.array(self.sample_bounds(real)[:-1]))  # one row per sample: what is counted
        extra = int(round(firsts.num_rows * (augmentation_factor - 1)))
        if target is None:
            if not preserve_distribution:
                raise InvalidOptionError("augment(preserve_distribution=False) balances classes: name them with target=.")
            groups = [Group({}, extra)] if extra else []
        else:
            have = self.count_values(firsts, target)
            if preserve_distribution:
                counts = allocate(extra, have) if extra else {}
            else:
                counts = _fill_up(have, extra)
            groups = [Group({target: _plain(v)}, n) for v, n in counts.items() if n > 0]
        synthetic = sample_groups(self, groups, seed=seed) if groups else real.slice(0, 0)
        real = real.append_column(SOURCE_COLUMN, pa.array(["real"] * real.num_rows))
        synthetic = synthetic.select(real.column_names[:-1]) if set(real.column_names[:-1]) <= set(synthetic.column_names) else synthetic
        synthetic = synthetic.append_column(SOURCE_COLUMN, pa.array(["synthetic"] * synthetic.num_rows))
        return self.from_table(pa.concat_tables([real, synthetic], promote_options="permissive"))

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


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _fill_up(have: Mapping[Any, int], extra: int) -> dict[Any, int]:
    """Synthetic counts per class that bring ``have`` + them as close to equal as ``extra`` samples allow."""
    # Water-filling: raise the smallest classes to a common level, never taking samples away.
    classes = sorted(have, key=lambda k: have[k])
    need: dict[Any, float] = {k: 0.0 for k in classes}
    for i in range(len(classes), 0, -1):
        low = classes[:i]
        level = (extra + sum(have[k] for k in low)) / i
        if level >= have[low[-1]]:
            need = {k: (level - have[k] if k in low else 0.0) for k in classes}
            break
    from engine.core.mixtures import allocate

    return allocate(extra, need) if extra and sum(need.values()) > 0 else {k: 0 for k in classes}


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


def check_generate_options(model: Any, options: Mapping[str, Any], model_name: str) -> None:
    """Refuse sampling options that ``model.generate`` does not take as keyword-only arguments.

    Such options (e.g. a diffusion model's ``sampling_steps``) act only while generating, so a
    trained model can be sampled with other settings for one call; anything else is named back.
    """
    allowed = {n for n, p in inspect.signature(model.generate).parameters.items() if p.kind is p.KEYWORD_ONLY}
    unknown = set(options) - allowed
    if unknown:
        raise InvalidOptionError(
            f"Unknown generation option(s) {', '.join(sorted(unknown))} for the {model_name!r} "
            f"model; it takes {', '.join(sorted(allowed)) or 'none'}."
        )


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
