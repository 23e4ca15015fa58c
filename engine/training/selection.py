"""Early stopping: keep the weights of the best validation, stop when the score stops improving.

The training loop offers every validation score to a :class:`BestState`; it copies the
model's state when the score is the best so far (strictly better: a tie keeps the earlier,
shorter-trained weights) and says when ``patience`` validations have passed without
improvement. The run then ends with the best weights, whatever came after them.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch


class BestState:
    """The best validation so far and the state it was measured on."""

    def __init__(self, patience: int | None = None):
        self.patience = patience
        self.best_score = -math.inf
        self.best_epoch: float | None = None  # an epoch count, fractional when a budget cut the epoch short
        self.best_state: dict[str, torch.Tensor] | None = None
        self.trace: list[tuple[float, float]] = []  # (epoch, score) of every validation
        self.since_best = 0

    def offer(self, epoch: float, score: float, state: Callable[[], Mapping[str, torch.Tensor]]) -> bool:
        """Record ``score`` (higher is better) at ``epoch``; copy ``state()`` if it is the best. True if it was."""
        self.trace.append((epoch, float(score)))
        if math.isfinite(score) and score > self.best_score:
            self.best_score, self.best_epoch, self.since_best = float(score), epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in state().items()}
            return True
        self.since_best += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` validations in a row failed to improve on the best."""
        return self.patience is not None and self.best_epoch is not None and self.since_best >= self.patience


def selection_summary(history: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The chosen epoch, its score and the validation trace read from a run's history; None without validation."""
    trace = [(row.get("epoch"), row["validation_score"]) for row in history if "validation_score" in row]
    if not trace:
        return None
    chosen = next((row for row in reversed(history) if "chosen_epoch" in row), None)
    out: dict[str, Any] = {"validation_scores": [{"epoch": e, "score": s} for e, s in trace]}
    if chosen is not None:
        out["chosen_epoch"] = chosen["chosen_epoch"]
        out["chosen_score"] = chosen["chosen_score"]
        if "stopped_by" in chosen:
            out["stopped_by"] = chosen["stopped_by"]
    return out
