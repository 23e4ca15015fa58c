"""Training progress, drawn once, by the driver.

Rank 0 of the training workers tells a small actor (:class:`ProgressBoard`) how many
steps it has done and the losses of each finished epoch; a thread of the driver reads
the board a few times a second and draws what it finds (:class:`DriverProgress`):

- on a terminal, one tqdm bar whose description carries the epoch and the last losses;
- anywhere else (a log file, ``ray job submit``'s job log, a pipe), one line per epoch
  in the same format, instead of a redraw every fraction of a second.

Nothing goes through the workers' stdout, so the display does not depend on Ray
copying worker output to the driver (``log_to_driver``), which the engine leaves
off unless ``--verbose``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

REPORT_EVERY_S = 0.5  # how often rank 0 tells the board its step count (epoch ends are always told)
POLL_EVERY_S = 0.25  # how often the driver reads the board
# A budgeted run's bar counts whole seconds of its budget; a rate of "1.00 s/s" would say nothing.
BUDGET_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}<{remaining}]"


class ProgressBoard:
    """The actor between rank 0 and the driver: steps done, total steps, and what happened so far."""

    def __init__(self) -> None:
        self._steps = 0
        self._total = 0
        self._events: list[tuple[str, Any]] = []

    # Times are the board's clock (one clock, whichever nodes the workers run on).
    def start(self, start_epoch: int, total_steps: int, steps_done: int) -> None:
        self._total, self._steps = total_steps, steps_done
        self._events.append(("start", {"start_epoch": start_epoch, "steps": steps_done, "at": time.time()}))

    def steps(self, steps_done: int) -> None:
        self._steps = steps_done

    def epoch(self, row: dict[str, float], steps_done: int) -> None:
        self._steps = steps_done
        self._events.append(("epoch", {"row": row, "steps": steps_done, "at": time.time()}))

    def poll(self, seen: int) -> tuple[int, int, list[tuple[str, Any]]]:
        """Steps done, total steps, and the events after the first ``seen``."""
        return self._steps, self._total, self._events[seen:]


class WorkerProgress:
    """Rank 0's side: counts steps and tells the board, without ever waiting for it."""

    def __init__(self, board: Any, *, start_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        self._board = board
        self._done = start_epoch * steps_per_epoch
        self._last = time.monotonic()
        self._told = board.start.remote(start_epoch, epochs * steps_per_epoch, self._done)

    def step(self) -> None:
        self._done += 1
        now = time.monotonic()
        if now - self._last >= REPORT_EVERY_S:
            self._last = now
            self._board.steps.remote(self._done)

    def epoch(self, row: Mapping[str, float]) -> None:
        self._told = self._board.epoch.remote(dict(row), self._done)

    def close(self) -> None:
        """Wait (briefly) until the board has the last epoch: the worker may end right after."""
        import ray

        try:
            ray.get(self._told, timeout=10)
        except Exception:  # noqa: BLE001 - the display never fails a run
            pass


def _is_terminal(stream: TextIO) -> bool:
    """A terminal with a width (a pseudo-terminal of size 0, as some tools open, would show nothing)."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


def format_losses(row: Mapping[str, float]) -> str:
    # Counters and labels (epoch, step, phase) are the bar's own; only the losses are listed.
    return "  ".join(
        f"{k} {v:+.4f}" for k, v in row.items()
        if k not in ("epoch", "step", "phase", "seconds") and isinstance(v, (int, float))
    )


class DriverProgress:
    """Draws a run's progress on the driver while the block runs; ``handle`` goes to the workers.

    ``tty=None`` draws a live bar when ``stream`` is a terminal and one line per epoch
    otherwise. Disabled (``enabled=False``), it draws nothing and ``handle`` is None.
    """

    def __init__(self, name: str, epochs: int, *, enabled: bool = True, stream: TextIO | None = None,
                 tty: bool | None = None, budget_s: float | None = None) -> None:
        self.name, self.epochs, self.enabled = name, epochs, enabled
        # A run with a time budget is not expected to reach its epoch cap: its bar measures the budget.
        self.budget_s = budget_s
        self._stream = stream
        self._tty = tty
        self.handle: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seen = 0
        self._bar: Any = None
        self._desc = f"{name} epoch 0{self._of_epochs()}"
        self._steps, self._total = 0, 0
        self._began_at, self._began_steps = time.time(), 0  # when and where rank 0 (last) started

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> DriverProgress:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> Any:
        """Start the board and the drawing; return the board's handle for the workers (None when disabled)."""
        if not self.enabled or self.handle is not None:
            return self.handle
        import ray

        self._stream = self._stream or sys.stderr
        if self._tty is None:
            self._tty = _is_terminal(self._stream)
        self.handle = ray.remote(num_cpus=0)(ProgressBoard).remote()
        if self._tty:
            from tqdm import tqdm

            self._bar = tqdm(desc=self._desc, total=None, unit="step", file=self._stream, dynamic_ncols=True,
                             leave=True, mininterval=POLL_EVERY_S)
        self._thread = threading.Thread(target=self._run, name="synth-progress", daemon=True)
        self._thread.start()
        return self.handle

    def close(self) -> None:
        """Draw the last news, close the bar and end the board (again: nothing)."""
        if self.handle is None:
            return
        import ray

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        try:
            self._drain(timeout=5)  # the last epoch's line, told just before the workers finished
        except Exception:  # noqa: BLE001 - the display never fails a run
            pass
        if self._bar is not None:
            self._bar.close()
        try:
            ray.kill(self.handle)
        except Exception:  # noqa: BLE001
            pass
        self.handle = None

    # -- drawing -----------------------------------------------------------------------------
    def _run(self) -> None:
        from ray.exceptions import RayActorError

        while not self._stop.wait(POLL_EVERY_S):
            try:
                self._drain(timeout=5)
            except RayActorError:  # the board is gone: nothing more to draw
                return
            except Exception:  # noqa: BLE001 - a slow board: try again; the display never fails a run
                continue

    def _drain(self, timeout: float) -> None:
        import ray

        steps, total, events = ray.get(self.handle.poll.remote(self._seen), timeout=timeout)
        self.apply(steps, total, events)

    def apply(self, steps: int, total: int, events: list[tuple[str, Any]]) -> None:
        """Draw what the board says (split out from the polling so that it can be tested alone)."""
        self._seen += len(events)
        for kind, payload in events:
            if kind == "start":  # rank 0 begins (again, after a failure): rates count from here
                self._total = total
                self._began_at, self._began_steps = payload["at"], payload["steps"]
                if self._bar is not None:
                    self._bar.reset(total=total)
                    self._bar.initial = self._bar.n = payload["steps"]
                if payload["start_epoch"]:
                    self._write(f"resuming from the checkpoint after epoch {payload['start_epoch']}")
            elif kind == "epoch":
                row = payload["row"]
                self._desc = f"{self.name} epoch {row['epoch']}{self._of_epochs()}  {format_losses(row)}"
                if not self._tty:
                    self._write(self._meter(payload["steps"], payload["at"]))
        self._steps, self._total = steps, total or self._total
        if self._bar is not None:
            if self.budget_s is not None:
                self._bar.bar_format = BUDGET_FORMAT
                self._bar.total = round(self.budget_s)
                self._bar.n = min(round(time.time() - self._began_at), round(self.budget_s))
            else:
                if self._total and self._bar.total != self._total:
                    self._bar.total = self._total
                self._bar.n = self._steps
            self._bar.set_description_str(self._desc, refresh=False)
            self._bar.refresh()

    def _meter(self, steps: int, at: float) -> str:
        """The bar's text at ``steps``, reached at time ``at``, as one line for a log."""
        from tqdm import tqdm

        elapsed = max(at - self._began_at, 0.0)
        if self.budget_s is not None:
            return tqdm.format_meter(round(min(elapsed, self.budget_s)), round(self.budget_s), elapsed,
                                     prefix=self._desc, bar_format=BUDGET_FORMAT)
        return tqdm.format_meter(steps, self._total or None, elapsed, prefix=self._desc,
                                 unit="step", initial=self._began_steps)

    def _of_epochs(self) -> str:
        return f" (budget {self.budget_s:g} s)" if self.budget_s is not None else f"/{self.epochs}"

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)
