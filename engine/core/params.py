"""Model hyperparameters as data: one rule per field, checked by one function, worded like scikit-learn.

Every model's config is a dataclass extending :class:`ModelConfig` whose fields
are declared with :func:`param`, which stores the field's :class:`Rule` (and a
line of help) in the field's metadata::

    @dataclass
    class TVAEConfig(ModelConfig):
        embedding_dim: int = param(128, Int(min=1), "size of the latent code")
        compress_dims: tuple[int, ...] = param((128, 128), Dims(), "encoder widths")
        lr: float = param(1e-3, Float(gt=0))

:class:`ModelConfig`'s ``__post_init__`` runs :func:`validate_config`, which
checks every field against its rule the same way for every model and stores
the normalised value (lists become tuples, ints given for floats become
floats); a model's genuinely cross-field checks go in
:meth:`ModelConfig.check_combination`. A refused value reads::

    The 'pac' parameter of CTGAN must be an integer >= 1. Got 0 instead.

The rules are also data for interfaces: :func:`describe_parameters` lists a
config's parameters with their type, rule and default (for ``--help`` and the
docs), and :func:`check_model_config` is the front doors' one entry point,
refusing unknown names with the list of valid ones.

Rules: :class:`Int`, :class:`Float`, :class:`Bool`, :class:`Choice`,
:class:`Dims` (layer widths), :class:`Pair` (two values of one rule) and
:class:`OrNone` (a rule, or ``None``).
"""
from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np

from engine.core.errors import InvalidOptionError, SynthError

RULE_KEY = "rule"  # where param() puts a field's Rule in its metadata
HELP_KEY = "help"


class Refused(SynthError):
    """Raised by :meth:`Rule.check` for a value outside the rule; :func:`validate_config` words the message.

    :func:`validate_config` and :func:`check_value` turn it into an
    :class:`InvalidOptionError` naming the field; it is a :class:`SynthError`
    all the same, so that a rule used on its own breaks no "every engine error
    is a SynthError" promise.
    """


def _fmt(x: float) -> str:
    return f"{x:g}"


# ---------------------------------------------------------------------------- rules
class Rule:
    """What values one hyperparameter takes.

    Subclasses implement :meth:`check` (return the normalised value or raise
    :class:`Refused`) and :meth:`text` (the rule as the end of the sentence
    "The 'x' parameter of M must be ..."), and set ``type_name``.
    """

    type_name: str = "object"

    def check(self, value: Any) -> Any:
        """``value`` normalised (e.g. a list made a tuple), or :class:`Refused` when the rule refuses it."""
        raise NotImplementedError

    def text(self, plural: bool = False) -> str:
        """The rule in words: ``"an integer >= 1"`` (``plural``: ``"integers >= 1"``, to describe a sequence's items)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.text()}>"


def _bounds_text(gt: float | None, ge: float | None, lt: float | None, le: float | None) -> str:
    """" > 0", " >= 0", " in [0, 1)", ... (empty without bounds)."""
    low = ("(", ">", gt) if gt is not None else ("[", ">=", ge) if ge is not None else None
    high = (")", "<", lt) if lt is not None else ("]", "<=", le) if le is not None else None
    if low and high:
        return f" in {low[0]}{_fmt(low[2])}, {_fmt(high[2])}{high[0]}"
    bound = low or high
    return f" {bound[1]} {_fmt(bound[2])}" if bound else ""


def _within(v: float, gt: float | None, ge: float | None, lt: float | None, le: float | None) -> bool:
    return (
        (gt is None or v > gt) and (ge is None or v >= ge) and (lt is None or v < lt) and (le is None or v <= le)
    )


@dataclass(frozen=True, repr=False)
class Int(Rule):
    """An integer (a Python or NumPy integer, never a bool or a float) within ``[min, max]``."""

    min: int | None = None
    max: int | None = None
    type_name = "int"

    def check(self, value: Any) -> int:
        # bool is an int to Python, but True for a layer count is a mistake, not a 1.
        if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
            raise Refused
        if not _within(int(value), None, self.min, None, self.max):
            raise Refused
        return int(value)  # a NumPy integer would not survive json.dumps of the saved config

    def text(self, plural: bool = False) -> str:
        noun = "integers" if plural else "an integer"
        if self.min is not None and self.max is not None:
            return f"{noun} in {self.min}..{self.max}"
        return noun + _bounds_text(None, self.min, None, self.max)


@dataclass(frozen=True, repr=False)
class Float(Rule):
    """A finite real number (an int is accepted and stored as a float) with optional open/closed bounds.

    ``gt``/``ge`` bound it from below (strictly / inclusively), ``lt``/``le`` from above.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    type_name = "float"

    def __post_init__(self) -> None:
        if self.gt is not None and self.ge is not None or self.lt is not None and self.le is not None:
            raise SynthError("Float takes at most one lower bound (gt or ge) and one upper bound (lt or le).")

    def check(self, value: Any) -> float:
        if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
            raise Refused
        v = float(value)
        if not np.isfinite(v) or not _within(v, self.gt, self.ge, self.lt, self.le):
            raise Refused
        return v

    def text(self, plural: bool = False) -> str:
        return ("finite numbers" if plural else "a finite number") + _bounds_text(self.gt, self.ge, self.lt, self.le)


@dataclass(frozen=True, repr=False)
class Bool(Rule):
    """``True`` or ``False`` (a NumPy bool too; not 0 or 1, which are more likely a mistaken field)."""

    type_name = "bool"

    def check(self, value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise Refused
        return bool(value)

    def text(self, plural: bool = False) -> str:
        return "booleans" if plural else "a boolean (True or False)"


@dataclass(frozen=True, repr=False, init=False)
class Choice(Rule):
    """One of a fixed set of strings: ``Choice("batch", "layer", "none")``.

    ``because`` explains, in the message, why an option a user may expect is not among them.
    """

    options: tuple[str, ...]
    because: str = ""
    type_name = "str"

    def __init__(self, *options: str, because: str = ""):
        if not options:
            raise SynthError("Choice needs at least one option.")
        object.__setattr__(self, "options", tuple(options))
        object.__setattr__(self, "because", because)

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise Refused
        return value

    def text(self, plural: bool = False) -> str:
        text = ("each one of " if plural else "one of ") + ", ".join(map(repr, self.options))
        return f"{text} ({self.because})" if self.because else text


def _items(value: Any) -> tuple[Any, ...]:
    """``value`` as a tuple when it is a sequence of values (a list from JSON, a tuple, an array), else Refused."""
    # A string is iterable but "256" is surely not meant as widths (2, 5, 6); a dict iterates its keys.
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Iterable, np.ndarray)):
        raise Refused
    return tuple(value)


@dataclass(frozen=True, repr=False)
class Dims(Rule):
    """Layer widths: a list/tuple of integers >= 1, stored as a tuple; ``min_len`` says how many at least.

    An empty sequence (the default ``min_len=0``) means no hidden layer.
    """

    min_len: int = 0
    what: str = "layer widths"
    type_name = "tuple[int, ...]"

    def check(self, value: Any) -> tuple[int, ...]:
        items = _items(value)
        if len(items) < self.min_len:
            raise Refused
        return tuple(Int(min=1).check(d) for d in items)

    def text(self, plural: bool = False) -> str:
        size = "a non-empty list" if self.min_len == 1 else f"a list of at least {self.min_len}" if self.min_len else "a list"
        return f"{size} of {Int(min=1).text(plural=True)} ({self.what})"


@dataclass(frozen=True, repr=False)
class Pair(Rule):
    """Exactly two values, each under ``item`` (e.g. Adam's betas), stored as a tuple."""

    item: Rule

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return f"tuple[{self.item.type_name}, {self.item.type_name}]"

    def check(self, value: Any) -> tuple[Any, Any]:
        items = _items(value)
        if len(items) != 2:
            raise Refused
        return (self.item.check(items[0]), self.item.check(items[1]))

    def text(self, plural: bool = False) -> str:
        return ("pairs" if plural else "a pair") + f" of {self.item.text(plural=True)}"


@dataclass(frozen=True, repr=False)
class OrNone(Rule):
    """``None`` (which the model reads as "pick for me") or a value under ``rule``."""

    rule: Rule

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return f"{self.rule.type_name} | None"

    def check(self, value: Any) -> Any:
        return None if value is None else self.rule.check(value)

    def text(self, plural: bool = False) -> str:
        return f"None or {self.rule.text(plural)}"


# ------------------------------------------------------------------- declaring
def param(default: Any, rule: Rule, help: str = "") -> Any:
    """A config field with its ``rule`` (and a line of ``help``) in its metadata: ``lr: float = param(2e-4, Float(gt=0))``."""
    if not isinstance(rule, Rule):
        raise SynthError(f"param() takes a Rule (Int, Float, ...); got {rule!r}.")
    # Defaults are immutable (numbers, strings, tuples), so no default_factory is needed.
    return field(default=default, metadata={RULE_KEY: rule, HELP_KEY: help})


def rule_of(f: Any, owner: str = "") -> Rule:
    """The :class:`Rule` a dataclass field was declared with; an error if it was declared without one."""
    rule = f.metadata.get(RULE_KEY)
    if not isinstance(rule, Rule):
        # A declaration mistake in the engine or a plugin, caught by the contract test of every model.
        raise SynthError(f"The field {f.name!r} of {owner or 'the config'} declares no rule; declare it with param(default, Rule).")
    return rule


def config_owner(config_class: type) -> str:
    """The model name used in messages: ``CTGANConfig`` -> ``"CTGAN"``."""
    name = config_class.__name__
    return name[: -len("Config")] if name.endswith("Config") and name != "Config" else name


def invalid_parameter(owner: str, name: str, must_be: str, value: Any) -> InvalidOptionError:
    """The error for ``name`` of ``owner`` holding ``value``, scikit-learn's wording (for cross-field checks too)."""
    return InvalidOptionError(f"The {name!r} parameter of {owner} must be {must_be}. Got {value!r} instead.")


def validate_config(config: Any, owner: str | None = None) -> None:
    """Check every field of the dataclass ``config`` against its declared rule, storing the normalised values.

    The one check of every model's hyperparameters: raises
    :class:`~engine.core.errors.InvalidOptionError` naming the first refused
    field, its rule and the value received.
    """
    owner = owner or config_owner(type(config))
    for f in fields(config):
        rule = rule_of(f, owner)
        value = getattr(config, f.name)
        try:
            normalised = rule.check(value)
        except Refused:
            raise invalid_parameter(owner, f.name, rule.text(), value) from None
        object.__setattr__(config, f.name, normalised)  # works for frozen configs too


@dataclass
class ModelConfig:
    """Base of every model's hyperparameter dataclass: fields declared with :func:`param`, checked on creation.

    Subclasses add fields only, plus :meth:`check_combination` when some
    values are valid alone but not together.
    """

    def __post_init__(self) -> None:
        validate_config(self)
        self.check_combination()

    def check_combination(self) -> None:
        """Checks across fields (run after every field passed its own rule); none by default.

        Raise :func:`invalid_parameter` (an InvalidOptionError) naming the field a user would change.
        """

    @classmethod
    def owner(cls) -> str:
        """The model's name in messages (``"CTGAN"`` for ``CTGANConfig``)."""
        return config_owner(cls)


def describe_parameters(config_class: type) -> list[dict[str, Any]]:
    """The hyperparameters of a config class as data, in declaration order.

    Each entry has ``name``, ``type`` (e.g. ``"int"``, ``"tuple[float, float]"``),
    ``rule`` (e.g. ``"an integer >= 1"``), ``default`` and ``help``: what the
    CLI and the docs show. A model class is accepted for its ``config_class``.
    """
    config_class = getattr(config_class, "config_class", config_class)
    if not is_dataclass(config_class):
        raise SynthError(f"{config_class!r} is not a config dataclass.")
    owner = config_owner(config_class)
    out = []
    for f in fields(config_class):
        rule = rule_of(f, owner)
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None  # type: ignore[misc]
        )
        out.append({"name": f.name, "type": rule.type_name, "rule": rule.text(), "default": default,
                    "help": f.metadata.get(HELP_KEY, "")})
    return out


# ----------------------------------------------------------------- front doors
def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """``" Did you mean 'latent_dim'?"`` when ``name`` looks like a typo of a known name, else ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_model_config(model_cls: type, values: Mapping[str, Any], *, owner: str) -> Any:
    """``model_cls.config_class`` built from ``values``; an unknown name or a bad value is refused naming it.

    The same check for every model of every modality: unknown keys list the
    valid ones, and a value of the wrong type that the config's own rules did
    not anticipate is reported as such rather than as a ``TypeError`` from deep inside.
    """
    config_cls = model_cls.config_class
    known = [f.name for f in fields(config_cls)]
    if not isinstance(values, Mapping):
        raise InvalidOptionError(
            f"The model_config of {owner} must be a mapping of parameter names to values. Got {values!r} instead."
        )
    for key, value in values.items():
        if key not in known:
            raise InvalidOptionError(
                f"The model_config of {owner} takes the parameters {', '.join(map(repr, known))}. "
                f"Got unknown parameter {key!r} (= {value!r}) instead.{did_you_mean(key, known)}"
            )
    try:
        return config_cls(**values)
    except SynthError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidOptionError(
            f"The model_config of {owner} has a value of the wrong type ({type(exc).__name__}: {exc}). Got {dict(values)!r}."
        ) from None


# ------------------------------------------------------- single-value checks
def check_value(owner: str, name: str, value: Any, rule: Rule) -> Any:
    """``value`` normalised by ``rule``, or the InvalidOptionError :func:`validate_config` would raise.

    For an option checked outside a config (a front door's own keyword): same rules, same wording.
    """
    try:
        return rule.check(value)
    except Refused:
        raise invalid_parameter(owner, name, rule.text(), value) from None
