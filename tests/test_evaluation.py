"""The evaluation layer against SDMetrics' own numbers, and sanity checks that must hold."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.evaluation import QualityEvaluator, evaluate_tables, quality_scores
from engine.evaluation import fidelity as F
from engine.schema import infer_schema

sdmetrics = pytest.importorskip("sdmetrics")


@pytest.fixture(scope="module")
def real(adult):
    return adult.sample(n=3000, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def noisy(real):
    """A plausible but imperfect synthetic table: columns resampled within income groups, numbers jittered."""
    rng = np.random.default_rng(0)
    out = real.copy()
    for income, idx in real.groupby("income").groups.items():
        for col in real.columns.drop("income"):
            out.loc[idx, col] = real.loc[rng.permutation(idx), col].to_numpy()
    # Jitter clipped to the real range: SDMetrics bins each table's numeric columns over that table's own
    # range, we bin both over the real range (so a shifted synthetic column cannot look perfect). With equal
    # ranges the two definitions coincide, which is what lets the scores be compared to 1e-6.
    out["age"] = (out["age"] + rng.integers(-3, 4, len(out))).clip(real["age"].min(), real["age"].max())
    out.loc[out["age"].idxmin(), "age"], out.loc[out["age"].idxmax(), "age"] = real["age"].min(), real["age"].max()
    return out


def _metadata(schema):
    return {"columns": {c.name: {"sdtype": "numerical" if c.kind.is_numeric else "categorical"} for c in schema.columns}}


def test_column_metrics_match_sdmetrics(real, noisy):
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    assert F.ks_complement(real["age"], noisy["age"]) == pytest.approx(KSComplement.compute(real["age"], noisy["age"]), abs=1e-6)
    assert F.tv_complement(real["workclass"], noisy["workclass"]) == pytest.approx(
        TVComplement.compute(real["workclass"], noisy["workclass"]), abs=1e-6
    )
    ours = F.correlation_similarity(real, noisy, "age", "hours-per-week", "pearson")
    theirs = CorrelationSimilarity.compute(real[["age", "hours-per-week"]], noisy[["age", "hours-per-week"]], coefficient="Pearson")
    assert ours == pytest.approx(theirs, abs=1e-6)
    ours = F.contingency_similarity(real["sex"], real["income"], noisy["sex"], noisy["income"])
    theirs = ContingencySimilarity.compute(real[["sex", "income"]], noisy[["sex", "income"]])
    assert ours == pytest.approx(theirs, abs=1e-6)


def test_quality_score_matches_sdmetrics_quality_report(real, noisy):
    from sdmetrics.reports.single_table import QualityReport

    schema = infer_schema(real)
    ours = quality_scores(real, noisy, schema)
    report = QualityReport()
    report.generate(real, noisy, _metadata(schema), verbose=False)
    shapes, trends = report.get_properties()["Score"].tolist()
    assert ours["column_shapes"] == pytest.approx(shapes, abs=1e-6)
    assert ours["column_pair_trends"] == pytest.approx(trends, abs=1e-6)
    assert ours["score"] == pytest.approx(report.get_score(), abs=1e-6)
    assert ours["score"] < 0.999  # the comparison is not between two perfect scores


def test_numeric_bins_follow_the_real_range_unlike_sdmetrics(real):
    # The documented difference: a synthetic column shifted by a constant keeps SDMetrics' binned
    # contingency score (its bins move with it) but not ours.
    shifted = real.copy()
    shifted["age"] = shifted["age"] + 30
    q = quality_scores(real, shifted, infer_schema(real))
    assert q["pairs"]["age / income"]["score"] < 0.8


def test_real_against_itself_is_perfect(real):
    q = quality_scores(real, real.copy(), infer_schema(real))
    assert q["column_shapes"] == pytest.approx(1.0) and q["column_pair_trends"] == pytest.approx(1.0)


def test_shuffled_columns_keep_shapes_but_lose_trends(real):
    rng = np.random.default_rng(0)
    shuffled = real.apply(lambda c: c.to_numpy()[rng.permutation(len(c))])
    q = quality_scores(real, shuffled, infer_schema(real))
    assert q["column_shapes"] == pytest.approx(1.0)
    assert q["column_pair_trends"] < 0.85


def test_uniform_random_table_scores_low(real):
    rng = np.random.default_rng(0)
    uniform = pd.DataFrame(
        {
            c: (rng.integers(real[c].min(), real[c].max() + 1, len(real)) if real[c].dtype != object else rng.choice(real[c].unique(), len(real)))
            for c in real.columns
        }
    )
    q = quality_scores(real, uniform, infer_schema(real))
    assert q["score"] < 0.6


def test_copying_the_training_rows_is_flagged_by_every_privacy_metric(adult):
    train = adult.sample(n=2000, random_state=0)
    holdout = adult.drop(index=train.index).sample(n=2000, random_state=1)
    copied = evaluate_tables(train, train.copy(), holdout=holdout, detection=False)
    p = copied.privacy
    assert p["exact_copy_rate"] > 0.99
    assert p["dcr_synthetic_to_train"]["median"] == 0.0
    assert p["closer_to_train_share"] > 0.9
    assert p["membership_inference_auc"] > 0.9
    honest = evaluate_tables(train, holdout.sample(n=2000, random_state=2, replace=True), holdout=holdout, detection=False)
    assert honest.privacy["membership_inference_auc"] < 0.6


def test_report_json_html_and_seed_style_api(real, noisy, tmp_path):
    report = QualityEvaluator().evaluate_tabular(real_data=real, synthetic_data=noisy, target="income")
    for attr in ("similarity_score", "correlation_score", "ks_statistic", "ml_efficacy"):
        assert isinstance(getattr(report, attr), float)
    out = report.save(tmp_path)
    doc = json.loads((out / "report.json").read_text())
    assert doc["similarity_score"] == pytest.approx(report.similarity_score)
    assert "diagnostics" in " ".join(doc["privacy_readings"])
    page = (out / "report.html").read_text()
    assert "<svg" in page and "ML efficacy" in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "Fidelity" in report.summary()


def test_a_failing_metric_is_recorded_not_fatal(real):
    broken = real.copy()
    broken["age"] = np.nan  # every value missing: KS cannot be computed
    report = evaluate_tables(real, broken, privacy=False, detection=False)
    assert np.isnan(report.details["columns"]["age"]["score"]) or report.details["columns"]["age"]["score"] is None
    assert 0 < report.similarity_score <= 1
