"""What a user sees by default: one progress display with the losses, none of Ray's own logs.

The end-to-end check (a training run in a subprocess, with no Ray noise on its console) is
``tests/test_cli.py::test_fit_then_sample_with_conditions``; these are the display's unit tests.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Lines of Ray's own logs that reached the console before the engine kept them in Ray's log files.
RAY_NOISE = [
    "Reporting training result",  # Ray Train worker, INFO, once per ray.train.report
    "Failed to query Ray Train Controller actor state",  # PlacementGroupCleaner, every second without a dashboard
    "(RayTrainWorker pid=",  # any worker output copied to the driver
    "(PlacementGroupCleaner pid=",
    "(SplitCoordinator pid=",
    "(TrainController pid=",
    "(pid=",  # Ray's tqdm redraws from a worker
    "Token authentication is enabled for this Ray cluster",  # Ray's banner on every local start
    "Starting execution of Dataset",
    "Progress bars disabled",
]


def user_env() -> dict[str, str]:
    """The environment of a user's shell: no Ray of this test session to join, no --verbose."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "SYNTH_VERBOSE")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _draw(tty: bool) -> str:
    from engine.training.progress import DriverProgress

    out = io.StringIO()
    progress = DriverProgress("ctgan", 2, stream=out, tty=tty)
    if tty:  # what open() does on a terminal, without the Ray actor
        from tqdm import tqdm

        progress._bar = tqdm(desc=progress._desc, total=None, unit="step", file=out, leave=True)
    progress.apply(0, 20, [("start", {"start_epoch": 0, "steps": 0, "at": 1000.0})])
    for steps in range(1, 10):
        progress.apply(steps, 20, [])
    row = {"epoch": 1, "loss_d": -0.5, "loss_g": 1.25, "seconds": 5.0}
    progress.apply(10, 20, [("epoch", {"row": row, "steps": 10, "at": 1005.0})])
    progress.apply(15, 20, [])
    row = {"epoch": 2, "loss_d": -0.25, "loss_g": 1.0, "seconds": 5.0}
    progress.apply(20, 20, [("epoch", {"row": row, "steps": 20, "at": 1010.0})])
    if progress._bar is not None:
        progress._bar.close()
    return out.getvalue()


def test_progress_in_a_log_is_one_line_per_epoch():
    text = _draw(tty=False)
    lines = text.splitlines()
    assert "\r" not in text and len(lines) == 2, text
    assert lines[0].startswith("ctgan epoch 1/2  loss_d -0.5000  loss_g +1.2500:") and "50%|" in lines[0]
    assert "10/20 [00:05<00:05,  2.00step/s]" in lines[0]  # timed by the board's clock, not by the polling
    assert lines[1].startswith("ctgan epoch 2/2  loss_d -0.2500  loss_g +1.0000:") and "100%|" in lines[1]
    assert "20/20 [00:10<00:00,  2.00step/s]" in lines[1]


def test_progress_on_a_terminal_is_one_bar_redrawn_in_place():
    text = _draw(tty=True)
    assert text.count("\n") == 1 and text.endswith("\n"), repr(text)  # one line, redrawn with \r
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("ctgan epoch 2/2  loss_d -0.2500  loss_g +1.0000:") and "20/20" in last


def test_progress_says_when_a_run_resumes():
    from engine.training.progress import DriverProgress

    out = io.StringIO()
    progress = DriverProgress("tvae", 5, stream=out, tty=False)
    progress.apply(30, 50, [("start", {"start_epoch": 3, "steps": 30, "at": 1000.0})])
    progress.apply(40, 50, [("epoch", {"row": {"epoch": 4, "loss": 0.5}, "steps": 40, "at": 1002.0})])
    first, second = out.getvalue().splitlines()
    assert first == "resuming from the checkpoint after epoch 3"
    assert "80%|" in second and "40/50 [00:02<00:02,  5.00step/s]" in second  # the rate counts this run's steps only


def test_progress_of_a_budgeted_run_measures_the_budget_not_the_epoch_cap():
    """A run with a time budget never reaches its epoch cap: a bar of epochs would end at a few per cent."""
    from engine.training.progress import DriverProgress

    out = io.StringIO()
    progress = DriverProgress("tabddpm", 10_000, stream=out, tty=False, budget_s=180.0)
    progress.apply(0, 220_000, [("start", {"start_epoch": 0, "steps": 0, "at": 1000.0})])
    progress.apply(1100, 220_000, [("epoch", {"row": {"epoch": 50, "loss": 1.9}, "steps": 1100, "at": 1090.0})])
    progress.apply(2200, 220_000, [("epoch", {"row": {"epoch": 100, "loss": 1.8}, "steps": 2200, "at": 1180.0})])
    first, second = out.getvalue().splitlines()
    assert first.startswith("tabddpm epoch 50 (budget 180 s)  loss +1.9000:") and "50%|" in first, first
    assert "| 90/180 s [01:30<01:30]" in first, first
    assert "100%|" in second and "/10000" not in second, second


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("1", True), ("true", True)])
def test_verbose_switch(monkeypatch, value, expected):
    from engine.core import runtime

    monkeypatch.setenv(runtime.VERBOSE_ENV, value)
    assert runtime.verbose() is expected
