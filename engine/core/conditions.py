"""Conditions typed as text, on a command line or in a job config: ``col=value``, ``col>=x``.

What a condition means is the modality's business (a category or a range of a
table's column, an image's class); this module only reads the text into the
``{name: value}`` / ``{name: {op: value}}`` mapping every front door takes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.core.errors import InvalidConditionError


def parse_condition_strings(items: Sequence[str] | None) -> dict[str, Any] | None:
    """``["income=>50K", "age>=30"]`` -> ``{"income": ">50K", "age": {">=": 30}}``; None for no items."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        name, value = parse_condition_arg(item)
        out[name] = value
    return out


def parse_condition_arg(text: str) -> tuple[str, Any]:
    """Parse one CLI condition: ``col=value``, ``col>=x``, ``col<=x``, ``col>x``, ``col<x``.

    Values after ``=`` are kept as text (category labels are text); the
    comparison operators take numbers or dates.
    """
    # The first operator character ends the column name, so values may hold '<', '>' or '='.
    cut = min((i for i in (text.find(ch) for ch in "=<>") if i >= 0), default=-1)
    if cut <= 0:
        raise InvalidConditionError(
            f"Cannot read the condition {text!r}: write COLUMN=VALUE or COLUMN>=NUMBER (also <=, >, <)."
        )
    column, rest = text[:cut].strip(), text[cut:]
    for op in (">=", "<=", ">", "<"):
        if rest.startswith(op):
            return column, {op: _number_or_text(rest[len(op):].strip())}
    return column, rest[1:]


def _number_or_text(s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return s
