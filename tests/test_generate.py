"""engine.generate(spec): mixtures and sets honoured, data cards with correct hashes, determinism, augmentation,
and the spec run end to end through the CLI (one subprocess) and the job (in process). Gaussian copula: no Ray Train."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine.requirements.run import CARD_NAME, generate
from engine.requirements.spec import InvalidSpecError, load_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def adult_csv(adult, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "adult.csv"
    adult.sample(n=600, random_state=1).reset_index(drop=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(adult_csv):
    from engine import TabularSynthesizer

    return TabularSynthesizer("gaussian_copula").fit(adult_csv, seed=0)


def _spec(adult_csv, out, **extra):
    return {"data": str(adult_csv), "model": "gaussian_copula", "num_rows": 400, "seed": 5,
            "evaluation": {"full_report": False}, "output": {"path": str(out)}, **extra}


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_mixture_sets_conditions_and_rules_are_honoured(adult_csv, tmp_path):
    result = generate(_spec(
        adult_csv, tmp_path / "rows.parquet",
        num_rows=1001,
        conditions={"age": {"between": [25, 60]}, "race": {"not_in": [" White"]}},
        mixture={"income": {">50K": 0.3}},  # the rest: the other class
        constraints=[{"type": "conditional_bounds", "where": {"sex": " Male"}, "column": "hours-per-week", "low": 30}],
        anonymize=["native-country"],
    ))
    rows = pd.read_parquet(tmp_path / "rows.parquet")
    assert len(rows) == 1001 == result.num_rows
    # A mixture is exact by construction (largest remainder), not just within noise.
    assert rows["income"].value_counts().to_dict() == {" <=50K": 701, " >50K": 300}
    assert rows["age"].between(25, 60).all() and (rows["race"] != " White").all()
    assert (rows.loc[rows["sex"] == " Male", "hours-per-week"] >= 30).all()
    assert rows["native-country"].str.startswith("native-country-").all()
    # The excluded set's other values keep the model's proportions: every one appears, Black the most common as in Adult.
    races = rows["race"].value_counts()
    assert races.index[0] == " Black" and len(races) >= 3
    # Classes are shuffled together, not in blocks.
    assert rows["income"].iloc[:100].nunique() == 2
    fidelity = result.card["evaluation"]["per_class_fidelity"]
    assert fidelity["column"] == "income" and set(fidelity["scores"]) == {" <=50K", " >50K"}
    assert all(0 < s <= 1 for s in fidelity["scores"].values())


def test_data_card_hashes_shards_and_determinism(adult_csv, tmp_path):
    spec = _spec(adult_csv, tmp_path / "a" / "rows", output={"path": str(tmp_path / "a" / "rows"), "shards": 3},
                 mixture={"sex": {"Female": 0.5, "Male": 0.5}})
    first = generate(spec)
    folder = tmp_path / "a" / "rows"
    card = json.loads((tmp_path / "a" / CARD_NAME).read_text())
    assert card == json.loads(json.dumps(first.card, default=str))
    assert [f["path"] for f in card["files"]] == [f"rows/part-0000{i}.parquet" for i in range(3)]
    for f in card["files"]:
        assert f["sha256"] == _sha(tmp_path / "a" / f["path"])
    # The folder reads as one data set (no side file in it).
    assert len(pd.read_parquet(folder)) == 400 == card["rows"]["total"]
    assert card["model"]["name"] == "gaussian_copula" and len(card["model"]["digest_sha256"]) == 64
    assert card["seed"] == 5 and {"engine", "pandas", "pyarrow"} <= set(card["versions"])
    assert card["rows"]["groups"] == [{"conditions": {"sex": " Female"}, "count": 200}, {"conditions": {"sex": " Male"}, "count": 200}]
    readme = (tmp_path / "a" / "README.md").read_text()
    assert "<!-- dataset-card: rows -->" in readme and card["files"][0]["sha256"] in readme
    # The same spec and seed give the same bytes; the card reproduces itself (and the README keeps one section).
    again = generate(tmp_path / "a" / CARD_NAME)
    assert [f["sha256"] for f in again.card["files"]] == [f["sha256"] for f in card["files"]]
    assert again.card["model"]["digest_sha256"] == card["model"]["digest_sha256"]
    assert (tmp_path / "a" / "README.md").read_text().count("<!-- dataset-card: rows -->") == 1
    other = generate({**spec, "seed": 6, "output": {"path": str(tmp_path / "b" / "rows"), "shards": 3}})
    assert [f["sha256"] for f in other.card["files"]] != [f["sha256"] for f in card["files"]]


def test_a_spec_without_a_model_uses_the_front_doors_choice(adult_csv, tmp_path):
    """No model named: the table front door chooses by the data's size (the copula under 400 rows), as TabularSynthesizer()."""
    small = tmp_path / "small.csv"
    pd.read_csv(adult_csv).iloc[:300].to_csv(small, index=False)
    spec = _spec(small, tmp_path / "rows.parquet")
    del spec["model"]
    result = generate(spec)
    assert result.card["model"]["name"] == "gaussian_copula" and result.card["rows"]["total"] == 400


def test_refusals_name_the_problem(adult_csv, tmp_path):
    with pytest.raises(InvalidSpecError, match="anonymizes column 'nope'"):
        generate(_spec(adult_csv, tmp_path / "x.parquet", anonymize=["nope"]))
    with pytest.raises(InvalidSpecError, match="'purple' is not a value of 'race'"):
        generate(_spec(adult_csv, tmp_path / "x.parquet", conditions={"race": {"in": ["purple"]}}))
    with pytest.raises(InvalidSpecError, match="privacy"):
        generate(_spec(adult_csv, tmp_path / "x.parquet", privacy={"epsilon": 1.0}))
    assert not (tmp_path / "x.parquet").exists()


def test_rebalance_and_augment_counts_and_proportions(fitted, adult_csv):
    real = pd.read_csv(adult_csv)
    balanced = fitted.rebalance("income", 501, seed=1)
    assert balanced["income"].value_counts().to_dict() == {" <=50K": 251, " >50K": 250}
    skewed = fitted.rebalance("income", 100, ratios={" >50K": 9, " <=50K": 1}, seed=1)
    assert skewed["income"].value_counts().to_dict() == {" >50K": 90, " <=50K": 10}
    have = real["income"].value_counts()
    kept = fitted.augment(real, augmentation_factor=2.0, target="income", seed=2)
    assert kept["source"].value_counts().to_dict() == {"real": 600, "synthetic": 600}
    syn = kept[kept["source"] == "synthetic"]["income"].value_counts()
    assert (syn - have).abs().max() <= 1  # the real proportions, to the row
    pd.testing.assert_frame_equal(kept[kept["source"] == "real"].drop(columns="source").reset_index(drop=True), real)
    filled = fitted.augment(real, augmentation_factor=2.0, target="income", preserve_distribution=False, seed=2)
    total = filled["income"].value_counts()
    assert (filled["source"] == "synthetic").sum() == 600 and total[" >50K"] == total[" <=50K"] == 600  # balanced
    # Too few extra rows to balance: they all go to the rarer class.
    short = fitted.augment(real, augmentation_factor=1.25, target="income", preserve_distribution=False, seed=2)
    assert short[short["source"] == "synthetic"]["income"].value_counts().to_dict() == {have.idxmin(): 150}
    plain = fitted.augment(real, augmentation_factor=1.25, seed=2)
    assert (plain["source"] == "synthetic").sum() == 150
    with pytest.raises(Exception, match="augmentation_factor"):
        fitted.augment(real, augmentation_factor=0.5)
    scores = fitted.class_fidelity(real, balanced, "income")
    assert set(scores) == {" <=50K", " >50K"}


def test_cli_prompt_end_to_end_and_dry_run(adult_csv, tmp_path, capsys):
    from engine.cli import main

    prompt = "300 rows, a fifth of them with income = '>50K', age between 20 and 60, every row has hours per week under 60"
    assert main(["generate", "--prompt", prompt, "--data", str(adult_csv), "--model", "gaussian_copula", "--dry-run"]) == 0
    printed = load_spec(capsys.readouterr().out)
    assert printed.num_rows == 300 and printed.mixture == {"income": {" >50K": 0.2, " <=50K": 0.8}}
    out = tmp_path / "cli" / "rows.csv"
    run = subprocess.run(
        [sys.executable, "-m", "engine.cli", "generate", "--prompt", prompt, "--data", str(adult_csv),
         "--model", "gaussian_copula", "--out", str(out), "--seed", "3"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    rows = pd.read_csv(out)
    assert len(rows) == 300 and (rows["income"] == " >50K").sum() == 60 and rows["age"].between(20, 60).all()
    assert (rows["hours-per-week"] <= 60).all()
    card_path = out.parent / CARD_NAME
    assert f"reproduce with: synth generate {card_path}" in run.stdout
    assert json.loads(card_path.read_text())["files"][0]["sha256"] == _sha(out)


def test_refused_prompt_quotes_the_words(adult_csv, capsys):
    from engine.cli import main

    assert main(["generate", "--prompt", "100 rows where colour is red", "--data", str(adult_csv), "--dry-run"]) == 2
    assert "'colour'" in capsys.readouterr().err


def test_job_runs_a_spec_file(adult_csv, tmp_path, capsys):
    from jobs.generate import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(load_spec(_spec(adult_csv, "out/rows.json", num_rows=50, conditions={"sex": "Female"})).to_yaml()
                    .replace(str(tmp_path / "out"), "out"))
    assert main(["--spec", str(spec)]) == 0
    assert f"reproduce with: synth generate {spec}" in capsys.readouterr().out
    rows = pd.read_json(tmp_path / "out" / "rows.json", lines=True)
    assert len(rows) == 50 and (rows["sex"] == " Female").all()
    assert main(["--spec", str(tmp_path / "missing.yaml")]) == 2


def test_interpret_against_a_fitted_model(fitted):
    from engine import interpret

    reading = interpret("200 rows where income = '>50K', age over 30, education is Bachelors or Masters", fitted)
    assert reading.request == {"num_rows": 200, "conditions": {
        "income": " >50K", "age": {">": 30}, "education": {"in": [" Bachelors", " Masters"]}}}


class _LabelledPoints:
    """A front door of another shape (labelled 2-d points, conditioned on ``label``): the core's rebalance and
    augment must work through its hooks alone, with no table code."""

    @staticmethod
    def make():
        import numpy as np
        import pyarrow as pa

        from engine.core.synthesizer import Synthesizer

        class Points(Synthesizer):
            modality = "points"
            means = {"a": 0.0, "b": 10.0, "c": 20.0}

            def __init__(self):  # no registry entry: this front door is built by hand
                pass

            def sample_table(self, num_rows, *, conditions=None, seed, stream=0, row_offset=0):
                rng = np.random.default_rng([seed, stream])
                labels = [conditions["label"]] * num_rows if conditions else list(rng.choice(list(self.means), num_rows))
                x = np.array([self.means[v] for v in labels]) + rng.normal(size=num_rows)
                return pa.table({"x": x, "label": labels})

            def parse_conditions(self, conditions):
                return conditions

            def condition_values(self, column):
                return list(self.means)

            def read_samples(self, data):
                return pa.table(data)

            def _require_fitted(self):
                return self

            def _artifact(self):
                raise NotImplementedError

            @classmethod
            def _from_artifact(cls, art):
                raise NotImplementedError

        return Points()


def test_rebalance_and_augment_are_modality_general():
    points = _LabelledPoints.make()
    balanced = points.rebalance("label", 31, seed=0)
    assert balanced.column("label").to_pylist().count("a") == 11 and balanced.num_rows == 31
    assert balanced.column("label").to_pylist().count("c") == 10
    assert all(abs(x - points.means[v]) < 6 for x, v in zip(balanced.column("x").to_pylist(), balanced.column("label").to_pylist()))
    real = {"x": [0.1, 0.2, 0.3, 10.0], "label": ["a", "a", "a", "b"]}
    mixed = points.augment(real, augmentation_factor=2.0, target="label", preserve_distribution=False, seed=0)
    rows = mixed.to_pylist()
    synthetic = [r["label"] for r in rows if r["source"] == "synthetic"]
    assert len(rows) == 8 and sorted(synthetic) == ["a", "b", "b", "b"]  # real + synthetic: 4 of each
    assert [r["source"] for r in rows[:4]] == ["real"] * 4
