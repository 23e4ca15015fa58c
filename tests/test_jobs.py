"""Jobs: run locally through main(), and submitted to a real Ray head through the Job Submission API."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_train_and_sample_jobs(tmp_path, adult_small):
    from jobs import sample as sample_job
    from jobs import train as train_job

    data = tmp_path / "adult.csv"
    adult_small.to_csv(data, index=False)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(data), "out": str(tmp_path / "m"), "model": "gaussian_copula"}))
    assert train_job.main(["--config", str(cfg)]) == 0
    assert sample_job.main(["--model", str(tmp_path / "m"), "--rows", "77", "--seed", "1", "--out", str(tmp_path / "r.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == 77


def test_bad_job_config_names_the_field(tmp_path, capsys):
    from jobs import train as train_job

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"data": "x.csv", "out": "m", "model": "gan9000", "scaling": {"num_workers": 0}}))
    assert train_job.main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "model" in err and "scaling.num_workers" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A real Ray head with the dashboard (the Job Submission API), started as a user would."""
    port, dash = _free_port(), _free_port()
    temp = tmp_path_factory.mktemp("rayhead")
    env = {**os.environ, "RAY_ADDRESS": ""}
    start = subprocess.run(
        [RAY, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--temp-dir={temp}", "--disable-usage-stats"],
        capture_output=True, text=True, env=env, timeout=180,
    )
    if start.returncode != 0:
        pytest.fail(f"ray start failed: {start.stderr[-2000:]}")
    try:
        yield f"http://127.0.0.1:{dash}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)


def _wait(client, job_id: str, timeout: float = 600) -> str:
    from ray.job_submission import JobStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_job_status(job_id)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return status
        time.sleep(2)
    client.stop_job(job_id)
    return "TIMEOUT"


def test_submitted_jobs_train_and_sample(ray_head, tmp_path, adult_small):
    from ray.job_submission import JobStatus, JobSubmissionClient

    data = tmp_path / "adult.csv"
    adult_small.to_csv(data, index=False)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(data), "out": str(tmp_path / "model"), "model": "ctgan", "epochs": 1,
                                   "batch_size": 200, "model_config": {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}}))
    client = JobSubmissionClient(ray_head)
    runtime_env = {"working_dir": str(REPO), "excludes": [".venv", ".git", "outputs", "**/__pycache__"]}
    train_id = client.submit_job(entrypoint=f"{sys.executable} -m jobs.train --config {cfg}", runtime_env=runtime_env)
    status = _wait(client, train_id)
    assert status == JobStatus.SUCCEEDED, client.get_job_logs(train_id)[-3000:]
    assert "model saved to" in client.get_job_logs(train_id)
    sample_id = client.submit_job(
        entrypoint=f"{sys.executable} -m jobs.sample --model {tmp_path / 'model'} --rows 2500 --out-dir {tmp_path / 'rows'} "
        "--rows-per-shard 1000 --num-actors 1 --seed 3",
        runtime_env=runtime_env,
    )
    status = _wait(client, sample_id)
    assert status == JobStatus.SUCCEEDED, client.get_job_logs(sample_id)[-3000:]
    rows = pd.concat(pd.read_parquet(f) for f in sorted((tmp_path / "rows").glob("part-*.parquet")))
    assert len(rows) == 2500 and list(rows.columns) == list(adult_small.columns)
