"""Jobs: run locally through main(), and submitted to a real Ray head through the Job Submission API."""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports (all held open together, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def test_local_train_and_sample_jobs(tmp_path, adult_small):
    from jobs import sample as sample_job
    from jobs import train as train_job

    data = tmp_path / "adult.csv"
    adult_small.to_csv(data, index=False)
    cfg = tmp_path / "train.yaml"
    # The table modality's own options at their keys: columns.* and constraints.
    cfg.write_text(yaml.safe_dump({"data": str(data), "out": str(tmp_path / "m"), "model": "gaussian_copula",
                                   "columns": {"categorical": ["education-num"]},
                                   "constraints": [{"type": "bounds", "column": "age", "low": 30, "high": 40}]}))
    assert train_job.main(["--config", str(cfg)]) == 0
    assert sample_job.main(["--model", str(tmp_path / "m"), "--rows", "77", "--seed", "1", "--out", str(tmp_path / "r.csv"),
                            "--conditions", '{"sex": "Female"}', "--precision", "float32"]) == 0
    rows = pd.read_csv(tmp_path / "r.csv")
    assert len(rows) == 77 and rows["age"].between(30, 40).all() and (rows["sex"] == " Female").all()
    from engine.core.registry import load_synthesizer

    schema = load_synthesizer(tmp_path / "m").schema_
    assert schema["education-num"].kind.value == "categorical"


def test_bad_job_config_names_the_field(tmp_path, capsys):
    from jobs import train as train_job

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"data": "x.csv", "out": "m", "model": "gan9000", "scaling": {"num_workers": 0}}))
    assert train_job.main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "model" in err and "scaling.num_workers" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"model": "ctgan", "image_size": 32}, ["'image_size' is an option of the image modality", "'ctgan'"]),
        ({"model": "dcgan", "columns": {"categorical": ["a"]}}, ["'columns.categorical' is an option of the table modality", "'dcgan'"]),
        ({"model": "ddpm", "constraints": [{"type": "integer", "column": "a"}]}, ["'constraints'", "table modality"]),
        ({"model": "ctgan", "options": {"channels": 3}}, ["'channels' is an option of the image modality"]),
        ({"model": "dcgan", "channels": 2}, ["'channels' must be one of 1, 3"]),
        ({"model": "dcgan", "image_size": "big"}, ["'image_size' must be an integer", "'big'"]),
        ({"model": "ctgan", "columns": {"categorical": ["a"], "colour": ["b"]}}, ["'columns.colour'", "categorical, continuous"]),
        ({"model": "gan9000"}, ["model", "Unknown model 'gan9000'", "ctgan", "dcgan"]),
    ],
)
def test_modality_options_in_a_train_config_are_checked_against_the_model(tmp_path, capsys, doc, words):
    from jobs import train as train_job

    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"data": "x.csv", "out": str(tmp_path / "m"), **doc}))
    assert train_job.main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not (tmp_path / "m").exists()
    for word in words:
        assert word in err


def test_modality_flags_of_the_train_job_are_checked_too(tmp_path, capsys):
    from jobs import train as train_job

    assert train_job.main(["--data", "x.csv", "--out", str(tmp_path / "m"), "--model", "tvae", "--image-size", "8"]) == 2
    assert "'image_size' is an option of the image modality" in capsys.readouterr().err


def test_the_train_job_without_a_model_trains_tables_and_checks_their_options(tmp_path, capsys):
    from engine.tabular.synthesizer import TabularSynthesizer
    from jobs import train as train_job
    from jobs.config import TrainJobConfig

    # No model named: the table front door, which chooses its model at fit (TabularSynthesizer()).
    assert TrainJobConfig(data="adult", out=str(tmp_path / "m")).front_door() is TabularSynthesizer
    assert train_job.main(["--data", "x.csv", "--out", str(tmp_path / "m"), "--image-size", "8"]) == 2
    err = capsys.readouterr().err
    assert "'image_size' is an option of the image modality" in err and "the default is a model of the table modality" in err


def test_sampling_options_are_checked_against_the_loaded_model():
    from engine.images.synthesizer import ImageSynthesizer
    from engine.core.errors import InvalidOptionError
    from jobs.config import SAMPLE_STAGES, options_for

    with pytest.raises(InvalidOptionError, match="'precision' is an option of the table modality.*'dcgan'"):
        options_for(ImageSynthesizer, {"precision": "float32"}, model="dcgan", stages=SAMPLE_STAGES)


def test_a_missing_model_path_says_how_a_submitted_job_reaches_it(tmp_path, capsys):
    from jobs import sample as sample_job

    assert sample_job.main(["--model", "outputs/models/nope", "--rows", "5", "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "outputs/models/nope" in err and "absolute path" in err and "s3://" in err and "gs://" in err
    assert "--working-dir" in err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--model", "m", "--rows", "-1", "--out", "r.csv"], "num_rows"),
        (["--model", "m", "--rows", "10"], "give exactly one of 'out'"),
        (["--model", "m", "--rows", "10", "--out-dir", "d", "--rows-per-shard", "0"], "rows_per_shard"),
    ],
)
def test_bad_sample_flags_name_the_field(argv, field, capsys):
    from jobs import sample as sample_job

    assert sample_job.main(argv) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


def _head_processes(temp: str) -> list:
    """Processes of the head started below: its command lines name its own temporary folder."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(temp in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def ray_head():
    """A real Ray head with the dashboard (the Job Submission API), started as a user would.

    ``ray start --block`` keeps the head's processes tied to one process of ours;
    stopping it ends only this head. (``ray stop`` would end every Ray on the
    machine, including other sessions' and this test session's own.)
    """
    import psutil
    from ray.job_submission import JobSubmissionClient

    # Every fixed default port (the agent's 52365, the client server's 10001, ...) may be taken by another
    # Ray on this machine: give this head free ports of its own.
    port, dash, agent, agent_grpc, runtime_env, metrics, client = _free_ports(7)
    temp = tempfile.mkdtemp(prefix="rh-", dir="/tmp")  # short: Ray's socket paths live under it
    # Ray 2.60 asks for a token on the dashboard: this head gets one of its own, the client sends it.
    token = secrets.token_hex(32)
    token_path = Path(temp) / "auth_token"
    token_path.write_text(token)
    # The project's venv first on PATH, as in a user's activated shell: a job's `python` is the head's.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}
    log_path = Path(temp) / "ray-start.log"
    log = log_path.open("w")
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--dashboard-agent-listen-port={agent}",
         f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
         f"--metrics-export-port={metrics}", f"--ray-client-server-port={client}", f"--temp-dir={temp}",
         "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 180
        while True:
            if head.poll() is not None:
                pytest.fail(f"ray start exited with {head.returncode}: {log_path.read_text()[-2000:]}")
            try:
                JobSubmissionClient(address, headers=headers).list_jobs()
                break
            except Exception as exc:  # noqa: BLE001 - the dashboard is not up yet
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ray dashboard did not answer within 180 s: {exc}\n{log_path.read_text()[-2000:]}")
                time.sleep(2)
        yield {"address": address, "headers": headers, "token_path": token_path}
    finally:
        head.terminate()  # SIGTERM: the head drains and takes its processes down with it
        try:
            head.wait(timeout=10)  # a graceful drain takes ~30 s; what is left is killed below
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=30)
        leftovers = _head_processes(temp)
        for p in leftovers:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _submit(client, **kwargs) -> str:
    """Submit, retrying while the head's job agent is still registering (the dashboard answers before it)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return client.submit_job(**kwargs)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(3)


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
    client = JobSubmissionClient(ray_head["address"], headers=ray_head["headers"])
    runtime_env = {"working_dir": str(REPO), "excludes": [".venv", ".git", "outputs", "**/__pycache__"]}
    train_id = _submit(client, entrypoint=f"{sys.executable} -m jobs.train --config {cfg}", runtime_env=runtime_env)
    status = _wait(client, train_id)
    assert status == JobStatus.SUCCEEDED, client.get_job_logs(train_id)[-3000:]
    assert "model saved to" in client.get_job_logs(train_id)
    sample_id = _submit(client, 
        entrypoint=f"{sys.executable} -m jobs.sample --model {tmp_path / 'model'} --rows 2500 --out-dir {tmp_path / 'rows'} "
        "--rows-per-shard 1000 --num-actors 1 --seed 3",
        runtime_env=runtime_env,
    )
    status = _wait(client, sample_id)
    assert status == JobStatus.SUCCEEDED, client.get_job_logs(sample_id)[-3000:]
    rows = pd.concat(pd.read_parquet(f) for f in sorted((tmp_path / "rows").glob("part-*.parquet")))
    assert len(rows) == 2500 and list(rows.columns) == list(adult_small.columns)


def test_sample_job_scaling_options_and_pipeline_config(tmp_path, adult_small, ray_session):
    from jobs import pipeline as pipeline_job
    from jobs import sample as sample_job
    from jobs import train as train_job

    data = tmp_path / "adult.csv"
    adult_small.to_csv(data, index=False)
    assert train_job.main(["--data", str(data), "--out", str(tmp_path / "m"), "--model", "ctgan", "--epochs", "1",
                           "--batch-size", "200", "--checkpoint-every", "1", "--no-use-gpu", "--cpus-per-worker", "1",
                           "--time-budget", "5m"]) == 0
    from engine import TabularSynthesizer

    trained = TabularSynthesizer.load(tmp_path / "m")  # the budget turned validation on: the epoch is scored
    assert "validation_score" in trained.history_[-1] and trained.history_[-1]["chosen_epoch"] == 1
    cfg = tmp_path / "sample.yaml"
    cfg.write_text(yaml.safe_dump({"model": str(tmp_path / "m"), "out_dir": str(tmp_path / "s"), "num_rows": 300,
                                   "rows_per_shard": 100, "num_actors": 2, "use_gpu": False, "cpus_per_actor": 0.5}))
    assert sample_job.main(["--config", str(cfg)]) == 0
    assert sum(len(pd.read_parquet(f)) for f in (tmp_path / "s").glob("part-*.parquet")) == 300
    pcfg = tmp_path / "pipeline.yaml"
    pcfg.write_text(yaml.safe_dump({"data": str(data), "model": "gaussian_copula", "target": "income",
                                    "out": str(tmp_path / "p"), "scaling": {"num_workers": 1, "use_gpu": False}}))
    assert pipeline_job.main(["--config", str(pcfg), "--seed", "2"]) == 0
    assert (tmp_path / "p" / "synthetic.parquet").exists() and (tmp_path / "p" / "report" / "report.json").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": str(data), "scaling": {"cpus_per_worker": 0}}))
    assert pipeline_job.main(["--config", str(bad)]) == 2


def _ray_job_submit(env: dict[str, str], address: str, *entrypoint: str) -> subprocess.CompletedProcess:
    """``ray job submit`` from the command line, again while the head's job agent is still registering."""
    deadline = time.monotonic() + 60
    while True:
        run = subprocess.run(
            [RAY, "job", "submit", "--address", address, "--working-dir", ".", "--", *entrypoint],
            capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
        )
        if "No available agent" not in run.stdout + run.stderr or time.monotonic() > deadline:
            return run
        time.sleep(2)


def test_sample_job_submitted_from_the_command_line_as_the_readme_says(ray_head, tmp_path, adult_small):
    """The README's steps: token authentication switched on in the shell, the model named by an absolute path."""
    from engine import TabularSynthesizer

    model = tmp_path / "model"  # absolute, as the README asks: the uploaded working directory has no outputs/
    TabularSynthesizer(model="gaussian_copula").fit(adult_small.head(500)).save(str(model))
    out = tmp_path / "rows.parquet"
    # The user's shell: the project's venv first on PATH (the job runs `python`), no Ray of this test
    # session to join; then what the README adds: token authentication and where the token is.
    shell = {k: v for k, v in os.environ.items()
             if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "SYNTH_VERBOSE")}
    shell["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{shell.get('PATH', '')}"
    readme = {**shell, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_head["token_path"])}
    entrypoint = ["python", "-m", "jobs.sample", "--model", str(model), "--rows", "123", "--seed", "1", "--out", str(out)]
    refused = _ray_job_submit(shell, ray_head["address"], *entrypoint)  # without RAY_AUTH_MODE=token: no token sent
    assert refused.returncode != 0 and "Authentication required" in refused.stdout + refused.stderr, (
        refused.stdout[-2000:] + refused.stderr[-2000:])
    done = _ray_job_submit(readme, ray_head["address"], *entrypoint)
    logs = done.stdout + done.stderr
    assert done.returncode == 0 and "succeeded" in logs and "wrote 123 rows" in logs, logs[-3000:]
    rows = pd.read_parquet(out)
    assert len(rows) == 123 and list(rows.columns) == list(adult_small.columns)
