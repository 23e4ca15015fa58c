"""The `synth` command end to end.

A fit that trains runs in a subprocess, as a user runs it (what reaches the console is part of
what is tested there); the other commands run in this process through ``engine.cli.main``,
which is what the entry point calls (a subprocess per command would start Python and Ray anew).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.test_quiet_output import RAY_NOISE, user_env


def synth_process(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def synth(capsys):
    """``synth ARGS`` in this process: its exit code (argparse's ``SystemExit`` included) and its output."""
    from engine.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["synth", *args], code, out.out, out.err)

    return run


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory, adult_small):
    path = tmp_path_factory.mktemp("data") / "adult.csv"
    adult_small.to_csv(path, index=False)
    return path


SMALL_CTGAN = '{"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}'  # the command is under test, not the model


@pytest.mark.parametrize(
    "model, extra",
    # One CPU for the worker: with the default (every CPU, 2 torch threads) the 20 steps took about 1 s each on a
    # busy 2-core machine, against 43 steps/s with one thread (see the lane report).
    [("gaussian_copula", []),
     ("ctgan", ["--epochs", "2", "--batch-size", "200", "--model-config", SMALL_CTGAN, "--cpus-per-worker", "1"])],
)
def test_fit_then_sample_with_conditions(tmp_path, adult_csv, model, extra, synth):
    out = tmp_path / "model"
    fit = synth_process("fit", str(adult_csv), "--model", model, "--out", str(out), *extra, env=user_env())
    assert fit.returncode == 0, fit.stderr
    noise = [line for line in (fit.stdout + fit.stderr).splitlines() if any(n in line for n in RAY_NOISE)]
    assert not noise, "Ray's own logs reached the console:\n" + "\n".join(noise[:10])
    if model == "ctgan":
        assert "epoch 2/2" in (fit.stdout + fit.stderr)  # per-epoch progress with losses
        # The driver draws a progress bar over the steps whose description carries the last losses.
        bar = [line for line in fit.stderr.replace("\r", "\n").splitlines() if "100%|" in line]
        assert bar and "ctgan epoch 2/2" in bar[-1] and "loss_d" in bar[-1]
    rows_path = tmp_path / "rows.parquet"
    smp = synth(
        "sample", str(out), "--rows", "321", "--condition", "income=>50K", "--condition", "age>=30",
        "--seed", "7", "--out", str(rows_path),
    )
    assert smp.returncode == 0, smp.stderr
    rows = pd.read_parquet(rows_path)
    assert len(rows) == 321 and (rows["income"] == " >50K").all() and (rows["age"] >= 30).all()
    again = tmp_path / "again.csv"
    assert synth("sample", str(out), "--rows", "321", "--condition", "income=>50K", "--condition", "age>=30",
                 "--seed", "7", "--out", str(again)).returncode == 0
    pd.testing.assert_frame_equal(rows, pd.read_csv(again), check_dtype=False)
    info = synth("info", str(out))
    assert info.returncode == 0 and '"model": "' + model + '"' in info.stdout


def test_help_documents_every_option(synth):
    for cmd, options in {
        "fit": ["--model", "--epochs", "--time-budget", "--out", "--workers", "--gpu", "--cpus-per-worker", "--categorical", "--storage-path"],
        "sample": ["--rows", "--condition", "--seed", "--out"],
        "evaluate": ["--holdout", "--target", "--out"],
    }.items():
        res = synth(cmd, "--help")
        assert res.returncode == 0
        for opt in options:
            assert opt in res.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["fit", "missing.csv", "--model", "gaussian_copula", "--out", "m"], ["missing.csv"]),
        (["sample", "no-such-model", "--rows", "5", "--out", "x.csv"], ["no-such-model"]),
    ],
)
def test_errors_are_one_clear_line(tmp_path, args, words, synth):
    res = synth(*args)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in res.stderr


def test_bad_condition_and_output_keep_nothing_half_written(tmp_path, adult_csv, synth):
    out = tmp_path / "model"
    assert synth("fit", str(adult_csv), "--model", "gaussian_copula", "--out", str(out)).returncode == 0
    res = synth("sample", str(out), "--rows", "5", "--condition", "sex=Robot", "--out", str(tmp_path / "r.csv"))
    assert res.returncode == 2 and "Robot" in res.stderr and "Female" in res.stderr
    res = synth("sample", str(out), "--rows", "5", "--out", str(tmp_path / "r.xlsx"))
    assert res.returncode == 2 and ".parquet" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_fit_without_a_model_lets_the_table_front_door_choose(tmp_path, adult_csv, synth):
    """As ``TabularSynthesizer()`` does: under a 2-minute budget, the Gaussian copula; the output says which."""
    from engine.core.registry import load_synthesizer

    out = tmp_path / "model"
    res = synth("fit", str(adult_csv), "--time-budget", "30s", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "saved gaussian_copula model" in res.stdout and load_synthesizer(str(out)).model == "gaussian_copula"


def test_invalid_model_config_json_is_one_line_naming_the_option(adult_csv, tmp_path, synth):
    res = synth("fit", str(adult_csv), "--model", "ctgan", "--model-config", "{embedding_dim: 8", "--out", str(tmp_path / "m"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--model-config" in res.stderr and "JSON object" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_sample_to_sharded_parquet_folder(tmp_path, adult_csv, synth, ray_session):
    out = tmp_path / "model"
    assert synth("fit", str(adult_csv), "--model", "gaussian_copula", "--out", str(out)).returncode == 0
    shards = tmp_path / "shards"
    res = synth("sample", str(out), "--rows", "250", "--condition", "sex=Female", "--out-dir", str(shards),
                "--rows-per-shard", "100", "--num-actors", "2", "--seed", "3")
    assert res.returncode == 0, res.stderr
    files = sorted(shards.glob("part-*.parquet"))
    rows = pd.concat([pd.read_parquet(f) for f in files])
    assert len(files) == 3 and len(rows) == 250 and (rows["sex"] == " Female").all()
    both = synth("sample", str(out), "--rows", "5", "--out", str(tmp_path / "x.csv"), "--out-dir", str(shards))
    assert both.returncode == 2 and "exactly one of --out" in both.stderr


@pytest.mark.parametrize(
    "model, option, owner",
    [("ctgan", ["--image-size", "16"], "image"), ("gaussian_copula", ["--channels", "3"], "image"),
     ("dcgan", ["--categorical", "sex,race"], "table"), ("ddpm", ["--constraints", "rules.yaml"], "table")],
)
def test_an_option_of_another_modality_is_refused_by_name(tmp_path, model, option, owner, synth):
    res = synth("fit", str(tmp_path / "never-read"), "--model", model, *option, "--out", str(tmp_path / "m"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{option[0]} is an option of the {owner} modality" in res.stderr and repr(model) in res.stderr
    assert not (tmp_path / "m").exists()


def test_modality_options_reach_the_front_door_and_sampling_options_apply(tmp_path, adult_csv, synth):
    rules = tmp_path / "rules.yaml"
    rules.write_text("constraints:\n  - {type: bounds, column: age, low: 30, high: 40}\n")
    out = tmp_path / "model"
    fit = synth("fit", str(adult_csv), "--model", "gaussian_copula", "--categorical", "education-num",
                "--constraints", str(rules), "--out", str(out))
    assert fit.returncode == 0, fit.stderr
    card = json.loads(synth("info", str(out)).stdout)
    kinds = {c["name"]: c["kind"] for c in card["columns"]}
    assert kinds["education-num"] == "categorical" and card["constraints"][0]["type"] == "bounds"
    res = synth("sample", str(out), "--rows", "50", "--precision", "float32", "--format", "json", "--seed", "1",
                "--out", str(tmp_path / "rows.jsonl"))
    assert res.returncode == 0, res.stderr
    assert "wrote 50 rows" in res.stdout
    rows = pd.read_json(tmp_path / "rows.jsonl", lines=True)
    assert len(rows) == 50 and rows["age"].between(30, 40).all()
    bad = synth("sample", str(out), "--rows", "5", "--format", "folder", "--out", str(tmp_path / "r"))
    assert bad.returncode == 2 and "'folder'" in bad.stderr and "'parquet'" in bad.stderr
    missing = synth("fit", str(adult_csv), "--model", "gaussian_copula", "--constraints", str(tmp_path / "no.yaml"),
                    "--out", str(tmp_path / "m2"))
    assert missing.returncode == 2 and "no.yaml" in missing.stderr and "Traceback" not in missing.stderr
