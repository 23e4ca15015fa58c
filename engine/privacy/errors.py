"""Errors of the privacy package, worded as help."""
from __future__ import annotations

from engine.core.errors import InvalidDataError, InvalidOptionError, SynthError


class PrivacyBudgetError(SynthError, ValueError):
    """The privacy budget is invalid, or too small for what was asked (e.g. one training step)."""


class PIIError(InvalidDataError):
    """A PII column is missing, or a real PII value would reach the output."""


class UtilityError(SynthError, RuntimeError):
    """The anonymised data's measured utility is below the threshold the user asked for."""


__all__ = ["PrivacyBudgetError", "PIIError", "UtilityError", "InvalidOptionError"]
