"""Exceptions raised by the engine.

Every error a user can cause is one of these, worded as help: it names the
column, file or field, what was expected and what was received. Code that
catches engine errors catches :class:`SynthError`.
"""
from __future__ import annotations


class SynthError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidDataError(SynthError, ValueError):
    """The input table, file or column cannot be used as given."""


class InvalidSchemaError(SynthError, ValueError):
    """A column-kind override or metadata document is inconsistent with the data."""


class InvalidConditionError(SynthError, ValueError):
    """A sampling condition names an unknown column or value, or cannot be met."""


class InvalidConstraintError(SynthError, ValueError):
    """A declared constraint does not fit the schema."""


class ArtifactError(SynthError, ValueError):
    """A saved model directory is missing, corrupted or from an incompatible version."""


class NotFittedError(SynthError, RuntimeError):
    """A method that needs a fitted object was called before ``fit``."""


class InvalidOptionError(SynthError, ValueError):
    """An option or hyperparameter is unknown or out of its allowed range."""
