"""The README's "On a cluster" walk-through, run as a user runs it: ``ray start --head``, then
``ray job submit ... -- python -m jobs.sample`` with a model given by absolute path.

The head is this test's own: free ports, its own temporary folder and authentication token.
The test reaches it on 127.0.0.1 only (the Job API is bound there; Ray's internal services
use the machine's address, since ``ray start`` maps 127.0.0.1 to it whatever it is told).
It is stopped by ending its ``ray start --block`` process, then any process whose command
line names its folder; never with ``ray stop``, which ends every Ray process on the machine
(this test session's Ray and other users' included).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RAY = str(BIN / "ray") if (BIN / "ray").exists() else shutil.which("ray")

pytestmark = pytest.mark.skipif(RAY is None, reason="the `ray` command-line tool is not installed (pip install 'ray[default]')")


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _processes_naming(folder: str) -> list:
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(folder in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            pass
    return found


@contextlib.contextmanager
def _local_head(env: dict[str, str]):
    """``ray start --head`` as the README has it, plus what keeps it apart from any other Ray here."""
    import psutil

    temp = tempfile.mkdtemp(prefix="rjs-", dir="/tmp")  # short: Ray's socket paths live under it
    port, dash, agent, agent_grpc, runtime_env, metrics, client = _free_ports(7)
    log_path = Path(temp) / "ray-start.log"
    log = log_path.open("w")
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--dashboard-host=127.0.0.1",
         f"--port={port}", f"--dashboard-port={dash}", f"--dashboard-agent-listen-port={agent}",
         f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
         f"--metrics-export-port={metrics}", f"--ray-client-server-port={client}", f"--temp-dir={temp}",
         "--num-cpus=1", "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if head.poll() is not None:
                pytest.fail(f"ray start exited with {head.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=2):
                    break
            except urllib.error.HTTPError:  # it answers (401 without a token): up
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the head's dashboard did not answer within 120 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` takes its own processes down with it
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=30)
        leftovers = _processes_naming(temp)
        for p in leftovers:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(leftovers, timeout=30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _submit(env: dict[str, str], address: str, *entrypoint: str) -> subprocess.CompletedProcess:
    """``ray job submit``, again while the head's job agent is still registering."""
    deadline = time.monotonic() + 60
    while True:
        run = subprocess.run(
            [RAY, "job", "submit", "--address", address, "--working-dir", ".", "--", *entrypoint],
            capture_output=True, text=True, timeout=180, cwd=REPO, env=env,
        )
        if "No available agent" not in run.stdout + run.stderr or time.monotonic() > deadline:
            return run
        time.sleep(2)


def test_sample_job_submitted_to_a_local_head_as_the_readme_says(tmp_path, adult_small):
    from engine import TabularSynthesizer

    model = tmp_path / "model"  # absolute, as the README asks: the uploaded working directory has no outputs/
    TabularSynthesizer(model="gaussian_copula").fit(adult_small.head(500)).save(str(model))
    out = tmp_path / "rows.parquet"

    token = Path(tempfile.mkdtemp(prefix="rjs-token-")) / "auth_token"
    token.write_text(secrets.token_hex(32))
    # The user's shell: the project's venv first on PATH (the job runs `python`), no Ray of this test
    # session to join; then what the README adds: token authentication and where the token is.
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "SYNTH_VERBOSE")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    readme_env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    entrypoint = ["python", "-m", "jobs.sample", "--model", str(model), "--rows", "123", "--seed", "1", "--out", str(out)]
    try:
        with _local_head(readme_env) as address:
            # Without RAY_AUTH_MODE=token the CLI sends no token and the head refuses the job.
            refused = _submit(env, address, *entrypoint)
            assert refused.returncode != 0 and "Authentication required" in refused.stdout + refused.stderr, (
                refused.stdout[-2000:] + refused.stderr[-2000:])
            done = _submit(readme_env, address, *entrypoint)
            logs = done.stdout + done.stderr
            assert done.returncode == 0 and "succeeded" in logs, logs[-3000:]
            assert "wrote 123 rows" in logs
    finally:
        shutil.rmtree(token.parent, ignore_errors=True)
    rows = pd.read_parquet(out)
    assert len(rows) == 123 and list(rows.columns) == list(adult_small.columns)
