"""Training to a time budget, and early stopping that keeps the best state."""
from __future__ import annotations

import pytest
import torch

from engine.core.errors import InvalidOptionError
from engine.training.config import TrainOptions, parse_duration
from engine.training.selection import BestState, selection_summary


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), (45, 45), ("2.5m", 150), ("600", 600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert TrainOptions(time_budget=text).time_budget == seconds


@pytest.mark.parametrize("bad", ["ten minutes", "0s", -1, 0, True, "5x", [5]])
def test_bad_duration_is_named(bad):
    with pytest.raises(InvalidOptionError, match="'time_budget'"):
        TrainOptions(time_budget=bad)


def test_early_stopping_picks_the_best_state_of_a_constructed_trace():
    weights = {"w": torch.zeros(3)}
    best = BestState(patience=2)
    trace = [0.50, 0.71, 0.65, 0.71, 0.69, 0.90]  # a tie with the best (epoch 4) is not an improvement
    stops = []
    for epoch, score in enumerate(trace, start=1):
        weights["w"].fill_(epoch)  # the state at this epoch, changed in place as training would
        best.offer(epoch, score, lambda: weights)
        stops.append(best.should_stop)
    assert stops == [False, False, False, True, True, False]
    assert best.best_epoch == 6 and best.best_score == 0.90
    assert torch.equal(best.best_state["w"], torch.full((3,), 6.0))
    # Had the run stopped at the patience limit, epoch 2's copy (not the live weights) would be kept.
    early = BestState(patience=2)
    for epoch, score in enumerate(trace[:4], start=1):
        weights["w"].fill_(epoch)
        early.offer(epoch, score, lambda: weights)
    assert early.should_stop and early.best_epoch == 2 and torch.equal(early.best_state["w"], torch.full((3,), 2.0))
    assert [e for e, _ in early.trace] == [1, 2, 3, 4]


def test_nan_score_is_never_best():
    best = BestState()
    best.offer(1, float("nan"), lambda: {"w": torch.ones(1)})
    assert best.best_epoch is None and best.best_state is None


def test_selection_summary_reads_the_history():
    history = [{"epoch": 1, "validation_score": 0.5}, {"epoch": 2, "loss": 1.0},
               {"epoch": 2.4, "validation_score": 0.7, "chosen_epoch": 2.4, "chosen_score": 0.7, "stopped_by": "time_budget"}]
    s = selection_summary(history)
    assert s["chosen_epoch"] == 2.4 and s["stopped_by"] == "time_budget"
    assert [v["epoch"] for v in s["validation_scores"]] == [1, 2.4]
    assert selection_summary([{"epoch": 1, "loss": 0.3}]) is None


@pytest.fixture(scope="module")
def budget_run(ray_session, adult):
    """One Ray Train run whose first epoch is far longer than its budget: 29,000 rows in batches of 4 (7,000+ steps)."""
    from engine import TabularSynthesizer

    torch_threads = torch.get_num_threads()
    synth = TabularSynthesizer(model="tvae", model_config={"embedding_dim": 8, "compress_dims": [16], "decompress_dims": [16]})
    synth.fit(adult, batch_size=4, time_budget="1s", show_progress=False)
    torch.set_num_threads(torch_threads)
    return synth


def test_time_budget_is_honoured_within_the_first_epoch(budget_run):
    history = budget_run.history_
    last = history[-1]
    assert last["stopped_by"] == "time_budget"
    assert last["epoch"] < 1  # stopped inside the first epoch, not at its end
    # Training time: the budget plus at most one step, the final validation and the checkpoint.
    assert sum(row["seconds"] for row in history) < 1 + 5
    assert budget_run.training_options_["time_budget"] == 1.0


def test_budget_run_keeps_and_reports_the_validated_state(budget_run):
    last = budget_run.history_[-1]
    assert "validation_score" in last and last["chosen_score"] == last["validation_score"]
    selection = budget_run.describe()["metrics"]["selection"]
    assert selection["stopped_by"] == "time_budget" and selection["chosen_epoch"] == last["epoch"]
    rows = budget_run.sample(20, seed=0)
    assert len(rows) == 20


def test_a_budget_without_epochs_ends_the_run_of_any_modality(ray_session, one_torch_thread):
    """The core, not each front door, lifts the epoch cap of a budgeted run: the toy modality's
    default of 5 epochs (milliseconds on 64 rows) would otherwise end the run long before 1 s."""
    import numpy as np

    from engine.core.registry import register_modality, unregister_modality
    from tests.toy_modality import TOY, ToySequenceSynthesizer

    x = np.random.default_rng(0).normal(size=(64, 4, 2))
    register_modality(TOY)
    try:
        synth = ToySequenceSynthesizer().fit(x, batch_size=32, seed=0, time_budget=1)
    finally:
        unregister_modality(TOY.name)
    last = synth.history_[-1]
    assert last["stopped_by"] == "time_budget"
    assert last["epoch"] > ToySequenceSynthesizer.default_epochs["toy_gaussian"]
    assert synth.training_options_["time_budget"] == 1.0
