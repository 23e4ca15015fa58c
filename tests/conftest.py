"""Shared fixtures: one Ray instance per test session, the Adult data set."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Keep Ray quiet and small on a 2-core CI machine.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")
# Under pytest-xdist the test processes share the cores: each gets its share of threads. More
# OpenMP/BLAS threads than cores make scikit-learn's and torch's spinning thread pools wait on
# each other (a 10 s gradient-boosting test took 400 s beside the other worker).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # a worker (the controller's value would reach every worker)
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)
# Ray Train's controller notices a finished run at its next poll of the workers (every 2 s by
# default); the suite runs a hundred tiny runs, so poll more often.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (a little oversubscribed)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    # Shut down at the very end only: tests share the instance.


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    """The full UCI Adult table, from the package's built-in copy."""
    from engine.data import load_adult

    return load_adult()


@pytest.fixture(scope="session")
def adult_small(adult: pd.DataFrame) -> pd.DataFrame:
    """A 2,000-row random subsample of Adult for fast model tests."""
    return adult.sample(n=2000, random_state=0).reset_index(drop=True)


def _one_torch_thread() -> Iterator[None]:
    # Tiny networks are all threading overhead: one thread is several times faster than two on
    # a busy 2-core machine. The old count is restored for the tests that follow.
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


one_torch_thread = pytest.fixture(_one_torch_thread)
"""One torch thread for a test (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
one_torch_thread_per_module = pytest.fixture(scope="module")(_one_torch_thread)
"""One torch thread for a whole test module, its module fixtures included."""
