"""Starting or joining Ray: one code path from laptop to cluster.

``ray_session()`` uses a Ray instance that is already initialised, joins the
cluster named by ``address`` or ``RAY_ADDRESS`` (as inside ``ray job
submit``), or starts a local instance on the spot and shuts it down on exit.
``require_shared_location`` refuses, on a multi-node cluster, a folder that
only the driver's node can see.

Quiet by default: the output of Ray's worker processes (Ray Train's and Ray
Data's messages, the workers' own prints) stays in the session's log files
(``/tmp/ray/session_*/logs`` on each node) and is not copied to the console;
the training loop draws its own progress on the driver. ``--verbose`` on the
commands (``set_verbose()``, or ``SYNTH_VERBOSE=1``) shows Ray's logs again.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.core.errors import SynthError

# Quiet defaults for local runs; a cluster's own settings win where already set.
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")


VERBOSE_ENV = "SYNTH_VERBOSE"
VERBOSE_HELP = ("show Ray's own logs (Ray Train, Ray Data, the workers' output) here too; "
                "by default they stay in Ray's log files (/tmp/ray/session_*/logs)")


def set_verbose(on: bool = True) -> None:
    """Show Ray's own logs on the console (the commands' ``--verbose``); also seen by child processes."""
    if on:
        os.environ[VERBOSE_ENV] = "1"


def verbose() -> bool:
    """Whether Ray's own logs go to the console as well as to its log files."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def _quiet_ray_data_console() -> None:
    """Ray Data's INFO lines on the driver ("Starting execution of Dataset ...") and its warning that
    progress bars are off (the engine turns them off) go to its log file only."""
    if "ray.data" not in sys.modules:
        import ray.data  # noqa: F401 - configures the "ray.data" logger, whose console handler is set below
    for handler in logging.getLogger("ray.data").handlers:
        if handler.get_name() == "console":
            handler.setLevel(logging.WARNING)
            if not any(isinstance(f, _DropMessage) for f in handler.filters):
                handler.addFilter(_DropMessage("Progress bars disabled"))


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _hide_token_auth_banner() -> None:
    """Ray 2.60 turns token authentication on for every new local instance and says so each time
    ("Token authentication is enabled for this Ray cluster ..."): on a laptop run that line is noise."""
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _DropMessage) for f in log.filters):
        log.addFilter(_DropMessage("Token authentication is enabled for this Ray cluster"))


def _session_logs_dir() -> str:
    try:
        import ray._private.worker as ray_worker

        return os.path.join(ray_worker._global_node.get_session_dir_path(), "logs")
    except Exception:  # noqa: BLE001 - only a hint in an error message
        return "/tmp/ray/session_latest/logs"


@contextlib.contextmanager
def ray_session(*, address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Make sure Ray is running for the duration of the block.

    Unless :func:`verbose`, the workers' output is not copied to this process's console
    (``log_to_driver=False``) and Ray logs warnings only; its logs stay in the session's
    log files, whose folder is named on stderr if the block fails. The warning "Failed to
    query Ray Train Controller actor state" (Ray Train's placement-group cleaner asking the
    State API, which a local instance without the dashboard does not serve, every second)
    thus stays in the log file; on a cluster started with ``ray start --head`` the
    dashboard serves it and the warning does not occur.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    loud = verbose()
    shown = {"log_to_driver": loud, "logging_level": logging.INFO if loud else logging.WARNING}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **shown)
    else:
        if not loud:
            _hide_token_auth_banner()
        # No dashboard: it would add ~10 processes and ~1 GB of memory on a laptop.
        ray.init(num_cpus=num_cpus, include_dashboard=False, configure_logging=loud, **shown)
    logs = None if address else _session_logs_dir()
    if not loud:
        _quiet_ray_data_console()
    try:
        yield
    except BaseException:
        if logs and not loud:
            print(f"Ray's own logs: {logs} (--verbose shows them here)", file=sys.stderr, flush=True)
        raise
    finally:
        ray.shutdown()


class SharedStorageError(SynthError, ValueError):
    """A location that every node of a multi-node cluster must reach is on one node only."""


def alive_nodes() -> list[dict[str, Any]]:
    """The alive nodes of the running Ray cluster (``ray.nodes()`` entries)."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def started_ray_here() -> bool:
    """Whether this process started the running Ray instance (a local one, which no autoscaler grows)."""
    try:
        from ray._private.worker import global_worker  # no public API tells a started head from a joined cluster

        return bool(global_worker.node.is_head())
    except Exception:  # an API change or a client connection: assume a cluster that may grow
        return False


def largest_node_cpus(nodes: list[dict[str, Any]] | None = None) -> float:
    """CPUs of the biggest alive node: no single worker or actor can reserve more."""
    nodes = alive_nodes() if nodes is None else nodes
    return max((float(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0.0)


def _listing(path: str) -> list[tuple[str, int]]:
    p = Path(path)
    if p.is_file():
        return [(p.name, p.stat().st_size)]
    if not p.is_dir():
        return []
    return sorted((c.name, c.stat().st_size if c.is_file() else -1) for c in p.iterdir())


def _nodes_not_seeing(path: str, expected: list[tuple[str, int]], nodes: list[dict[str, Any]]) -> list[str]:
    """Addresses of the nodes whose view of ``path`` differs from this process's."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(_listing)  # zero CPUs: runs even while a pool holds every core
    refs = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(path)
        for n in nodes
    ]
    seen = ray.get(refs)
    return [n.get("NodeManagerAddress", n["NodeID"]) for n, got in zip(nodes, seen) if got != expected]


def require_shared_location(
    location: str | None, *, option: str, what: str, writable: bool, nodes: list[dict[str, Any]] | None = None
) -> None:
    """On a cluster of several nodes, refuse a local ``location`` that not every node can reach.

    Cloud URIs (``s3://``, ``gs://``, ...) always pass; a single-node cluster never needs a check.
    ``None`` stands for the default, a folder on this node only. A local path (an NFS mount
    is fine) is probed on every node: a marker file is written when ``writable``, otherwise
    the folder's listing must look the same everywhere.
    """
    if location is not None and "://" in location:
        return
    nodes = alive_nodes() if nodes is None else nodes
    if len(nodes) <= 1:
        return
    hint = f"Pass a folder every node shares (an NFS mount) or an s3:// / gs:// URI as {option!r}."
    if location is None:
        raise SharedStorageError(
            f"The Ray cluster has {len(nodes)} nodes but no {option!r} was given: {what} would go to a folder "
            f"on this node only, which the other nodes cannot reach. {hint}"
        )
    path = str(Path(location).expanduser().resolve())
    marker = None
    if writable:
        Path(path).mkdir(parents=True, exist_ok=True)
        marker = Path(path) / f".synth-shared-probe-{uuid.uuid4().hex[:12]}"
        marker.write_text("probe")
    try:
        missing = _nodes_not_seeing(path, _listing(path), nodes)
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
    if missing:
        raise SharedStorageError(
            f"The {option!r} location {location!r} ({what}) is not the same folder on every node of the cluster: "
            f"node(s) {', '.join(missing)} see different content. {hint}"
        )


def torch_threads(cpus: float) -> int:
    """Intra-op threads for a worker or actor that reserved ``cpus`` CPUs: at least one, at most the cores here.

    Ray may be told a node has more CPUs than it has cores (tests oversubscribe on purpose); more
    threads than cores only makes the threads wait for each other.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(cpus), cores))
