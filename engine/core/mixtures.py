"""Samples made of groups, each drawn with its own conditions: mixtures, rebalancing, augmentation.

Modality-general: a group is a conditions mapping the front door understands
(a table's column value, an image's class label) and a count; each group is
drawn by the modality's own conditional sampling (``sample_table``), and the
groups are concatenated and shuffled with the seed. Counts come from shares by
the largest-remainder rule, so they always add up to the total.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from engine.core.errors import InvalidOptionError

if TYPE_CHECKING:
    from engine.core.synthesizer import Synthesizer

SOURCE_COLUMN = "source"  # what augment() marks each sample with: "real" or "synthetic"


@dataclass(frozen=True)
class Group:
    """``count`` samples meeting ``conditions``."""

    conditions: Mapping[str, Any]
    count: int


def allocate(total: int, shares: Mapping[Any, float]) -> dict[Any, int]:
    """``total`` split by ``shares`` (normalised) into whole counts that add up to ``total`` (largest remainder)."""
    keys = list(shares)
    weights = np.asarray([float(shares[k]) for k in keys], dtype=np.float64)
    if not len(keys) or (weights < 0).any() or weights.sum() <= 0:
        raise InvalidOptionError(f"Shares must be non-negative numbers with a positive sum. Got {dict(shares)!r} instead.")
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    # The rows left over go to the largest remainders; ties go to the first listed.
    order = sorted(range(len(keys)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return {k: int(c) for k, c in zip(keys, counts)}


def combine(total: int, base: Mapping[str, Any], columns: Mapping[str, Mapping[Any, float]]) -> list[Group]:
    """Groups for ``columns`` (column -> {value: share}) crossed, shares multiplied (the columns independent)."""
    combos: list[tuple[dict[str, Any], float]] = [(dict(base), 1.0)]
    for column, shares in columns.items():
        norm = sum(shares.values())
        combos = [({**c, column: v}, w * s / norm) for c, w in combos for v, s in shares.items() if s > 0]
    counts = allocate(total, {i: w for i, (_, w) in enumerate(combos)})
    return [Group(combos[i][0], counts[i]) for i in range(len(combos)) if counts[i] > 0]


def sample_groups(synth: Synthesizer, groups: Sequence[Group], *, seed: int, shuffle: bool = True) -> pa.Table:
    """Every group drawn by ``synth`` with its conditions (its own random stream), concatenated and shuffled."""
    tables = []
    offset = 0
    for stream, group in enumerate(groups, start=1):
        conditions = synth.coerce_conditions(dict(group.conditions)) if group.conditions else None
        tables.append(synth.sample_table(group.count, conditions=conditions, seed=seed, stream=stream, row_offset=offset))
        offset += group.count
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    if shuffle and table.num_rows > 1:
        # Whole samples are shuffled: a sample spanning rows (a sequence) keeps its rows together and in order.
        bounds = synth.sample_bounds(table)
        order = np.random.default_rng([seed, 0x5EED]).permutation(len(bounds) - 1)
        if len(bounds) - 1 != table.num_rows:
            order = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in order])
        table = table.take(pa.array(order))
    return table


def label_counts(table: pa.Table, column: str) -> dict[Any, int]:
    """How many samples of ``table`` have each value of ``column`` (nulls left out)."""
    if column not in table.column_names:
        raise InvalidOptionError(f"The samples have no column {column!r}; they have {', '.join(map(repr, table.column_names))}.")
    counts = table.column(column).value_counts().to_pylist()
    return {c["values"]: int(c["counts"]) for c in counts if c["values"] is not None}
