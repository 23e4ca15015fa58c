"""Shared fixtures: one Ray instance per test session, the Adult data set."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Keep Ray quiet and small on a 2-core CI machine.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")
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
