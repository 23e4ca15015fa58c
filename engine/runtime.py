"""Starting or joining Ray: one code path from laptop to cluster.

``ray_session()`` uses a Ray instance that is already initialised, joins the
cluster named by ``address`` or ``RAY_ADDRESS`` (as inside ``ray job
submit``), or starts a local instance on the spot and shuts it down on exit.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

# Quiet defaults for local runs; a cluster's own settings win where already set.
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")


@contextlib.contextmanager
def ray_session(*, address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Make sure Ray is running for the duration of the block."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
