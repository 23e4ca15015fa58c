"""The evaluation layer through its user-facing doors: the ``synth evaluate`` command and ``TabularSynthesizer.evaluate``."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from engine.evaluation import QualityEvaluator
from engine.tabular.schema.kinds import ColumnKind


@pytest.fixture(scope="module")
def split(adult):
    rows = adult.sample(n=3000, random_state=11).reset_index(drop=True)
    return rows.iloc[:1500], rows.iloc[1500:2250].reset_index(drop=True), rows.iloc[2250:].reset_index(drop=True)


def test_synth_evaluate_writes_json_and_html_with_the_scores(split, tmp_path):
    train, holdout, other = split
    # "Synthetic" rows: unseen real rows with the numbers jittered, so that no score is trivially perfect.
    synthetic = other.copy()
    synthetic["age"] = synthetic["age"] + np.random.default_rng(0).integers(-2, 3, len(synthetic))
    paths = {name: tmp_path / f"{name}.csv" for name in ("real", "synthetic", "holdout")}
    for name, frame in zip(paths, (train, synthetic, holdout)):
        frame.to_csv(paths[name], index=False)
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "evaluate", str(paths["real"]), str(paths["synthetic"]),
         "--holdout", str(paths["holdout"]), "--target", "income", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Fidelity" in done.stdout and "report.html" in done.stdout
    doc = json.loads((out / "report.json").read_text())
    assert 0.8 < doc["similarity_score"] < 1.0
    assert 0.0 < doc["ml_efficacy"] and 0.0 <= doc["detection_auc"] <= 1.0
    assert doc["details"]["rows"] == {"real": 1500, "synthetic": 750, "holdout": 750}
    assert doc["details"]["ml_efficacy"]["target"] == "income"
    assert doc["details"]["holdout"] == {"rows": 750, "source": "given"}
    assert 0.0 <= doc["privacy"]["membership_inference_auc"] <= 1.0
    page = (out / "report.html").read_text()
    assert f"{doc['similarity_score']:.1%}" in page and f"{doc['ml_efficacy']:.1%}" in page
    assert "ML efficacy (target income" in page and "<svg" in page
    # A missing input is a clear error naming the file, exit code 2.
    bad = subprocess.run(
        [sys.executable, "-m", "engine.cli", "evaluate", str(tmp_path / "nope.csv"), str(paths["synthetic"]), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert bad.returncode == 2 and "nope.csv" in bad.stderr


def test_synthesizer_evaluate_returns_a_report(ray_session, adult_small):
    from engine.tabular.synthesizer import TabularSynthesizer

    synth = TabularSynthesizer("gaussian_copula").fit(adult_small)
    synthetic = synth.sample(1000, seed=3)
    report = synth.evaluate(real_data=adult_small, synthetic_data=synthetic)
    assert isinstance(report.similarity_score, float) and 0.5 < report.similarity_score < 1.0
    assert report.details["rows"] == {"real": 2000, "synthetic": 1000, "holdout": 0}
    # The synthesizer's own schema is used, so the scored columns are exactly the fitted ones.
    assert set(report.details["columns"]) == {c.name for c in synth.schema_.columns if c.kind is not ColumnKind.IDENTIFIER}


def test_column_kind_overrides_change_the_metrics_used(split):
    train, _, other = split
    evaluator = QualityEvaluator(privacy=False, detection=False)
    inferred = evaluator.evaluate_tabular(real_data=train, synthetic_data=other)
    assert inferred.details["columns"]["education-num"]["metric"] == "KSComplement"
    assert inferred.details["columns"]["income"]["metric"] == "TVComplement"
    overridden = evaluator.evaluate_tabular(
        real_data=train, synthetic_data=other, categorical_columns=["education-num"], continuous_columns=["age"]
    )
    cols = overridden.details["columns"]
    assert cols["education-num"]["kind"] == "categorical" and cols["education-num"]["metric"] == "TVComplement"
    assert "ks_statistic" not in cols["education-num"]
    assert cols["age"]["kind"] == "continuous" and cols["age"]["metric"] == "KSComplement"
    # The pair trends follow: a categorical education-num is now compared by contingency, not correlation.
    assert inferred.details["pairs"]["age / education-num"]["metric"] == "CorrelationSimilarity"
    assert overridden.details["pairs"]["age / education-num"]["metric"] == "ContingencySimilarity"
    assert overridden.similarity_score != pytest.approx(inferred.similarity_score, abs=1e-9)
