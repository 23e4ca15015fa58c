"""Row generation in one process: the core that every sampling path calls.

``generate_rows`` turns a fitted model into exactly ``num_rows`` decoded rows
that satisfy the constraints and the conditions. Category conditions go to the
model natively when it supports them; ranges (and categories a model cannot
condition on) are met by rejection, with a bound on the number of draws so an
unreachable condition ends in a clear error instead of an endless loop.

Randomness comes from ``(seed, stream)`` only: the in-process API uses stream
0, the sharded sampler uses the shard index, so a shard's rows are the same
whatever the parallelism.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from engine.core.errors import InvalidConditionError
from engine.core.seeds import seed_streams
from engine.tabular.requirements.conditions import Conditions
from engine.tabular.requirements.constraints import Constraint, repair_constraints

MAX_CHUNK_ROWS = 65_536
# Rejection gives up when, after this many draws, fewer than MIN_ACCEPTANCE of them met the conditions.
PROBE_DRAWS = 20_000
MIN_ACCEPTANCE = 1e-3


class RowSource(Protocol):
    """A fitted model with its decoder: draws decoded rows."""

    supports_native_conditions: bool

    def category_index(self, column: str, value: Any) -> int: ...

    def draw(
        self,
        num_rows: int,
        category_conditions: Mapping[str, int] | None,
        generator: torch.Generator,
        rng: np.random.Generator,
    ) -> pd.DataFrame: ...

    def assign_identifiers(self, table: pd.DataFrame, row_offset: int) -> pd.DataFrame: ...


@dataclass(frozen=True)
class SamplingRequest:
    num_rows: int
    conditions: Conditions
    seed: int
    stream: int = 0
    row_offset: int = 0


def generate_rows(
    source: RowSource, constraints: Sequence[Constraint], request: SamplingRequest
) -> pd.DataFrame:
    """Exactly ``request.num_rows`` rows meeting the constraints and conditions."""
    conditions = request.conditions
    gen, rng = seed_streams(request.seed, request.stream)
    native: dict[str, int] = {}
    if conditions.categories and source.supports_native_conditions:
        native = {c.column: source.category_index(c.column, c.value) for c in conditions.categories}
    fixed = [c.column for c in conditions.categories]

    parts: list[pd.DataFrame] = []
    have = drawn = accepted = 0
    while have < request.num_rows:
        need = request.num_rows - have
        rate = accepted / drawn if drawn else 1.0
        # Draw a little more than the observed acceptance rate says we need, in bounded chunks.
        size = need if rate >= 1.0 else math.ceil(need / max(rate, MIN_ACCEPTANCE) * 1.1) + 16
        size = max(1, min(size, MAX_CHUNK_ROWS))
        frame = source.draw(size, native or None, gen, rng)
        # Repairs of one constraint can undo another: rows still violating any are regenerated.
        frame, keep = repair_constraints(frame, constraints, rng, fixed)
        if conditions:
            keep &= conditions.mask(frame)
        if not keep.all():
            frame = frame.loc[keep]
        drawn += size
        accepted += len(frame)
        if len(frame):
            parts.append(frame.iloc[:need])
            have += min(len(frame), need)
        if have < request.num_rows and drawn >= PROBE_DRAWS and accepted / drawn < MIN_ACCEPTANCE:
            what = []
            if conditions:
                what.append(f"the conditions on {', '.join(map(repr, conditions.columns))}")
            if constraints:
                what.append("the constraints (" + ", ".join(_describe_constraint(c) for c in constraints) + ")")
            raise InvalidConditionError(
                f"Only {accepted} of {drawn} generated rows ({accepted / drawn:.3%}) met {' and '.join(what)}: "
                "the model almost never produces such rows, so the request cannot be met in reasonable time. "
                f"Widen the ranges{' or relax the constraints' if constraints else ''}, or use a model that "
                "conditions on categories natively (ctgan, tvae, gaussian_copula)."
            )
    table = pd.concat(parts, ignore_index=True) if len(parts) != 1 else parts[0].reset_index(drop=True)
    return source.assign_identifiers(table, request.row_offset)


def _describe_constraint(c: Constraint) -> str:
    fields = {k: v for k, v in vars(c).items() if not k.endswith("_")}
    return f"{c.type} " + " ".join(f"{k}={v!r}" for k, v in fields.items())
