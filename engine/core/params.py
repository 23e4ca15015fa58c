"""Checks of model hyperparameters, worded like scikit-learn's parameter validation."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from engine.core.errors import InvalidOptionError, SynthError


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fail(owner: str, name: str, rule: str, value: Any) -> None:
    raise InvalidOptionError(f"The {name!r} parameter of {owner} must be {rule}. Got {value!r} instead.")


def check_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if not _is_int(value) or value < minimum:
        _fail(owner, name, f"an integer >= {minimum}", value)
    return value


def check_number(owner: str, name: str, value: Any, *, low: float = 0.0, low_inclusive: bool = False,
                 high: float | None = None, high_inclusive: bool = False) -> float:
    ok = _is_number(value) and (value >= low if low_inclusive else value > low)
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        rule = f"a finite number {'>=' if low_inclusive else '>'} {low:g}"
        if high is not None:
            rule += f" and {'<=' if high_inclusive else '<'} {high:g}"
        _fail(owner, name, rule, value)
    return float(value)


def check_dims(owner: str, name: str, value: Any) -> tuple[int, ...]:
    """A sequence of layer widths, each an integer >= 1 (an empty sequence means no hidden layer)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or not all(_is_int(d) and d >= 1 for d in value):
        _fail(owner, name, "a list of integers >= 1 (layer widths)", value)
    return tuple(int(d) for d in value)


def check_model_config(model_cls: type, values: Mapping[str, Any], *, owner: str) -> Any:
    """``model_cls.config_class`` built from ``values``; an unknown name or a bad value is refused naming it.

    The same check for every model of every modality: unknown keys list the
    valid ones, and a value of the wrong type that the config's own rules did
    not anticipate is reported as such rather than as a ``TypeError`` from deep inside.
    """
    config_cls = model_cls.config_class
    known = [f.name for f in fields(config_cls)]
    for key, value in values.items():
        if key not in known:
            raise InvalidOptionError(
                f"The model_config of {owner} takes the parameters {', '.join(map(repr, known))}. "
                f"Got unknown parameter {key!r} (= {value!r}) instead."
            )
    try:
        return config_cls(**values)
    except SynthError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidOptionError(
            f"The model_config of {owner} has a value of the wrong type ({type(exc).__name__}: {exc}). Got {dict(values)!r}."
        ) from None
