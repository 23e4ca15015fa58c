"""Class labels of modalities whose samples each carry one class (images, audio clips): requests to codes.

Such a front door learns the class names in a fixed order (its layout's
``class_names``) and the training class mix (``class_frequencies_``); users ask
for classes by name (``"7"``, ``"dog"``) or by index. What is the same for
every such modality lives here, written once: names and indices mapped to
codes with an error that names the unknown label and the known ones, a
request (one label, one label per sample, ``{label: count}`` or none) turned
into one code per sample, and the hooks mixtures, ``rebalance`` and ``augment``
need (the values of ``label``, the classes counted in a samples table).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from engine.core.errors import InvalidDataError, InvalidOptionError, SynthError

LABEL_COLUMN = "label"


def _is_index(label: Any) -> bool:
    return isinstance(label, (int, np.integer)) and not isinstance(label, bool)


def label_codes(labels: Sequence[Any] | np.ndarray, names: Sequence[str],
                error: type[SynthError] = InvalidDataError) -> np.ndarray:
    """Class indices of ``labels`` given as names (``"7"``) or indices (``7``) of ``names``.

    An integer that is itself a class name (``7`` for the class ``"7"``) means
    that class; any other integer is an index ``0..K-1``. Anything else is
    refused with ``error``, naming the label and the known classes.
    """
    names = list(names)
    if not names:
        raise error("This model was trained without labels; it cannot generate requested classes.")
    out = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        if isinstance(label, str) and label in names:
            out[i] = names.index(label)
        elif _is_index(label) and str(label) in names:
            out[i] = names.index(str(label))  # a class named "7" asked for as 7
        elif _is_index(label) and 0 <= label < len(names):
            out[i] = int(label)
        else:
            raise error(f"Unknown label {label!r}; the classes are {', '.join(names)} (or an index 0..{len(names) - 1}).")
    return out


class ClassLabelled:
    """Front-door mixin for samples that carry one class label each (images, audio clips).

    The front door provides ``_require_fitted()`` returning ``(model, preprocessor)``
    whose ``preprocessor.layout.class_names`` are the learned classes, and keeps
    ``class_frequencies_`` (the training class mix, or None). ``sample_unit``
    names one sample in messages (``"image"``, ``"clip"``); ``label_error`` is
    the error a bad request raises.
    """

    sample_unit: ClassVar[str] = "sample"
    label_error: ClassVar[type[SynthError]] = InvalidDataError
    class_frequencies_: np.ndarray | None

    @property
    def class_names(self) -> list[str]:
        """The classes the model can be asked for (empty when trained without labels)."""
        return list(self._require_fitted()[1].layout.class_names)  # type: ignore[attr-defined]

    def _label_codes(self, num_samples: int | None, labels: Any, rng: np.random.Generator) -> tuple[int, np.ndarray | None]:
        """The number of samples and one class index per sample (None for an unconditional model).

        ``labels``: None (the training class mix, drawn from ``rng``), one label
        for all, one label per sample, or ``{label: count}`` (a count may be 0,
        the request as a whole may not be empty).
        """
        from engine.core.synthesizer import check_count

        names = self.class_names
        unit, error = self.sample_unit, self.label_error
        if labels is None:
            n = check_count(num_samples)
            if not names:
                return n, None
            return n, rng.choice(len(names), size=n, p=self.class_frequencies_).astype(np.int64)
        if not names:
            raise error("This model was trained without labels; sample it without asking for classes (no labels or label condition).")
        if isinstance(labels, Mapping):
            keys = list(labels)
            counts = [check_count(labels[k], f"labels[{k!r}]", minimum=0) for k in keys]
            codes = np.repeat(label_codes(keys, names), counts)
            if len(codes) == 0:
                raise error(f"labels asks for no {unit} at all ({dict(labels)!r}); at least one count must be >= 1.")
            if num_samples is not None and num_samples != len(codes):
                raise error(f"labels ask for {len(codes)} {unit}s in all but num_samples is {num_samples}.")
            return len(codes), codes
        if isinstance(labels, str) or _is_index(labels):
            n = check_count(num_samples)
            return n, np.full(n, label_codes([labels], names)[0], dtype=np.int64)
        if num_samples is not None:
            check_count(num_samples)
        codes = label_codes(list(labels), names)
        if len(codes) == 0:
            raise error(f"labels is an empty sequence; give one label per {unit} (at least one).")
        if num_samples is not None and num_samples != len(codes):
            raise error(f"labels holds {len(codes)} labels but num_samples is {num_samples}; give one label per {unit}.")
        return len(codes), codes

    # ----------------------------------------------------- mixtures, rebalance, augment
    def _check_label_column(self, column: str) -> list[str]:
        names = self.class_names
        if column != LABEL_COLUMN:
            raise InvalidOptionError(
                f"{type(self).__name__} conditions on one column, {LABEL_COLUMN!r} (the class of each {self.sample_unit}); "
                f"got {column!r}."
            )
        if not names:
            raise InvalidOptionError(f"This model was trained without labels; it has no classes of {column!r} to draw.")
        return names

    def condition_values(self, column: str) -> list[Any]:
        """The class names (``column`` must be ``"label"``): what a mixture or ``rebalance`` draws."""
        return list(self._check_label_column(column))

    def count_values(self, table: pa.Table, column: str) -> dict[Any, int]:
        """How many samples of ``table`` (as ``sample_table`` gives them: class indices) have each class, by name."""
        names = self._check_label_column(column)
        if column not in table.column_names:
            raise InvalidOptionError(f"The samples have no column {column!r}; they have {', '.join(map(repr, table.column_names))}.")
        codes = np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=np.int64)
        counts = np.bincount(codes, minlength=len(names))
        return {names[k]: int(c) for k, c in enumerate(counts) if c > 0}


def per_class_share(names: Sequence[str], wanted: np.ndarray, judged: np.ndarray) -> dict[str, float]:
    """For each class present in ``wanted``: the share of its samples that ``judged`` assigns to it (by name)."""
    wanted, judged = np.asarray(wanted), np.asarray(judged)
    return {str(names[k]): float(np.mean(judged[wanted == k] == k)) for k in np.unique(wanted)}
