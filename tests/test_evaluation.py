"""The evaluation layer against SDMetrics' own numbers, and sanity checks that must hold."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.evaluation import QualityEvaluator, evaluate_tables, quality_scores
from engine.tabular import metrics as M
from engine.tabular.schema import infer_schema

sdmetrics = pytest.importorskip("sdmetrics")


@pytest.fixture(scope="module")
def real(adult):
    return adult.sample(n=3000, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def with_missing(real, noisy):
    """``real`` and ``noisy`` with missing values in two categorical and two numeric columns, more in the synthetic."""
    out = []
    for frame, rate, seed in ((real, 0.1, 1), (noisy, 0.2, 2)):
        frame, rng = frame.copy(), np.random.default_rng(seed)
        for col in ("workclass", "occupation", "age", "hours-per-week"):
            frame.loc[rng.random(len(frame)) < rate, col] = np.nan
        out.append(frame)
    return tuple(out)


@pytest.fixture(scope="module")
def noisy(real):
    """A plausible but imperfect synthetic table: columns resampled within income groups, numbers jittered."""
    rng = np.random.default_rng(0)
    out = real.copy()
    for income, idx in real.groupby("income").groups.items():
        for col in real.columns.drop("income"):
            out.loc[idx, col] = real.loc[rng.permutation(idx), col].to_numpy()
    # Jitter clipped to the real range, so that the standalone metric's bins (the real range) and the
    # QualityReport's (each table's own range) coincide here; ``out_of_range`` below leaves the range.
    out["age"] = (out["age"] + rng.integers(-3, 4, len(out))).clip(real["age"].min(), real["age"].max())
    out.loc[out["age"].idxmin(), "age"], out.loc[out["age"].idxmax(), "age"] = real["age"].min(), real["age"].max()
    return out


def _metadata(schema):
    return {"columns": {c.name: {"sdtype": "numerical" if c.kind.is_numeric else "categorical"} for c in schema.columns}}


def test_column_metrics_match_sdmetrics(real, noisy):
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    for col in ("age", "fnlwgt", "capital-gain"):
        assert M.KSComplement.compute(real[col], noisy[col]) == pytest.approx(KSComplement.compute(real[col], noisy[col]), abs=1e-6)
    for col in ("workclass", "native-country", "income"):
        assert M.TVComplement.compute(real[col], noisy[col]) == pytest.approx(TVComplement.compute(real[col], noisy[col]), abs=1e-6)
    for ours, theirs in (("pearson", "Pearson"), ("spearman", "Spearman")):
        for pair in (["age", "hours-per-week"], ["fnlwgt", "education-num"]):
            expected = CorrelationSimilarity.compute(real[pair], noisy[pair], coefficient=theirs)
            assert M.CorrelationSimilarity.compute(real[pair], noisy[pair], coefficient=ours) == pytest.approx(expected, abs=1e-6)
    for pair in (["sex", "income"], ["workclass", "occupation"]):
        expected = ContingencySimilarity.compute(real[pair], noisy[pair])
        assert M.ContingencySimilarity.compute(real[pair], noisy[pair]) == pytest.approx(expected, abs=1e-6)
    # A binned numeric column: the same bins as SDMetrics' standalone metric (real range, outer bins open).
    pair = ["age", "income"]
    expected = ContingencySimilarity.compute(real[pair], noisy[pair], continuous_column_names=["age"])
    assert M.ContingencySimilarity.compute(real[pair], noisy[pair], continuous_columns=["age"]) == pytest.approx(expected, abs=1e-6)


def test_the_real_maximum_falls_in_the_last_bin():
    from engine.tabular.metrics.contingency_similarity import bin_codes, bin_edges

    edges = bin_edges(0.0, 10.0)
    codes = bin_codes(np.array([0.0, 0.5, 9.5, 10.0, -3.0, 12.0, np.nan]), edges)
    assert codes.tolist() == [0, 0, 9, 9, 0, 9, M.MISSING]
    # Ten bins, not eleven: the rows at the maximum share the top bin with their neighbours.
    real = pd.DataFrame({"x": np.arange(11.0), "c": list("ab") * 5 + ["a"]})
    syn = pd.DataFrame({"x": np.r_[np.arange(10.0), 9.5], "c": real["c"]})
    assert M.ContingencySimilarity.compute(real, syn, continuous_columns=["x"]) == pytest.approx(1.0)


def test_metrics_on_missing_values_match_sdmetrics(with_missing):
    from sdmetrics.column_pairs import ContingencySimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    real, syn = with_missing
    # TVComplement drops the missing values (as SDMetrics does); their share is MissingRateSimilarity's to score.
    for col in ("workclass", "occupation"):
        assert M.TVComplement.compute(real[col], syn[col]) == pytest.approx(TVComplement.compute(real[col], syn[col]), abs=1e-6)
        assert M.MissingRateSimilarity.compute(real[col], syn[col]) == pytest.approx(1 - abs(real[col].isna().mean() - syn[col].isna().mean()))
    assert M.TVComplement.compute(pd.Series(["a", None, None]), pd.Series(["a", "a", "a"])) == pytest.approx(1.0)
    for col in ("age", "hours-per-week"):
        assert M.KSComplement.compute(real[col], syn[col]) == pytest.approx(KSComplement.compute(real[col], syn[col]), abs=1e-6)
    # ContingencySimilarity counts missing values as a category in both (SDMetrics: ``groupby(dropna=False)``,
    # and NaN past the last bin of a binned column).
    for pair, continuous in ((["workclass", "occupation"], []), (["age", "workclass"], ["age"]), (["hours-per-week", "sex"], ["hours-per-week"])):
        expected = ContingencySimilarity.compute(real[pair], syn[pair], continuous_column_names=continuous or None)
        assert M.ContingencySimilarity.compute(real[pair], syn[pair], continuous_columns=continuous) == pytest.approx(expected, abs=1e-6)


def test_metrics_declare_name_goal_and_range():
    for metric in (M.KSComplement, M.KSStatistic, M.TVComplement, M.NormalisedWasserstein, M.CorrelationSimilarity,
                   M.ContingencySimilarity, M.AssociationSimilarity, M.MissingRateSimilarity, M.CategoryCoverage, M.RangeCoverage):
        d = metric.describe()
        assert d["name"] == metric.__name__ and d["goal"] in ("maximize", "minimize") and d["min_value"] < d["max_value"]


def test_single_metrics_on_hand_made_columns():
    real, syn = pd.Series([1.0, 2.0, 3.0, None]), pd.Series([1.0, 2.0, 5.0, 6.0])
    assert M.KSStatistic.compute(real, syn) == pytest.approx(0.5)  # CDFs at 3: 1.0 vs 0.5
    assert M.RangeCoverage.compute(real, syn) == pytest.approx(1.0)
    assert M.RangeCoverage.compute(syn, real) == pytest.approx(0.4)  # [1, 3] covers 2 of the 5 units of [1, 6]
    assert M.MissingRateSimilarity.compute(real, syn) == pytest.approx(0.75)
    # Both columns scaled by the real range [1, 3] before the distance.
    from scipy.stats import wasserstein_distance
    assert M.NormalisedWasserstein.compute(real, syn) == pytest.approx(wasserstein_distance([0, .5, 1], [0, .5, 2, 2.5]))
    assert M.CategoryCoverage.compute(pd.Series(list("abc")), pd.Series(list("aab"))) == pytest.approx(2 / 3)
    a, b = pd.Series(list("aabb") * 5), pd.Series(list("xxyy") * 5)
    frame = pd.DataFrame({"a": a, "b": b})
    shuffled = pd.DataFrame({"a": a, "b": pd.Series(list("xyxy") * 5)})
    assert M.AssociationSimilarity.compute(frame, frame) == pytest.approx(1.0)
    assert M.AssociationSimilarity.compute(frame, shuffled) == pytest.approx(0.0)  # V = 1 against V = 0
    with pytest.raises(ValueError, match="coefficient"):
        M.correlation(a, b, "kendall")


def _sdmetrics_pair_trends(real, syn, schema):
    """Column Pair Trends from SDMetrics' standalone pair metrics (the ``binning="metric"`` option).

    A numeric column paired with a discrete one is binned as SDMetrics' standalone
    ContingencySimilarity bins it (``continuous_column_names``: ten bins of the real range, outer bins
    open). Returns the score and the per-pair ``(score, meets threshold)``.
    """
    import itertools

    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity

    pairs = {}
    for a, b in itertools.combinations(schema.columns, 2):
        cols = [a.name, b.name]
        if a.kind.is_numeric and b.kind.is_numeric:
            out = CorrelationSimilarity.compute_breakdown(real[cols], syn[cols], real_correlation_threshold=0.5)
            pairs[(a.name, b.name)] = (out["score"], bool(abs(out["real"]) > 0.5))
        else:
            continuous = [c.name for c in (a, b) if c.kind.is_numeric] or None
            out = ContingencySimilarity.compute_breakdown(
                real[cols], syn[cols], continuous_column_names=continuous, real_association_threshold=0.3
            )
            pairs[(a.name, b.name)] = (out["score"], bool(out["real_association"] > 0.3))
    return float(np.mean([score for score, meets in pairs.values() if meets])), pairs


@pytest.fixture(scope="module")
def out_of_range(real):
    """A noisy copy whose numbers leave the real range (unclipped jitter) and miss values the real table has."""
    rng = np.random.default_rng(0)
    out = real.copy()
    for col in ("age", "hours-per-week", "capital-gain", "fnlwgt"):
        out[col] = out[col] + rng.normal(0, out[col].std() * 0.3, len(out))
    out.loc[rng.random(len(out)) < 0.1, "age"] = np.nan
    out.loc[rng.random(len(out)) < 0.1, "workclass"] = np.nan
    return out


@pytest.mark.parametrize("data", ["complete", "with missing values", "out of range"])
def test_quality_score_equals_sdmetrics_quality_report(real, noisy, with_missing, out_of_range, data):
    from sdmetrics.reports.single_table import QualityReport

    real, noisy = {"complete": (real, noisy), "with missing values": with_missing, "out of range": (real, out_of_range)}[data]
    schema = infer_schema(real)
    ours = quality_scores(real, noisy, schema)
    report = QualityReport()
    report.generate(real, noisy, _metadata(schema), verbose=False)
    shapes, trends = report.get_properties()["Score"].tolist()
    assert ours["column_shapes"] == pytest.approx(shapes, abs=1e-6)
    assert ours["column_pair_trends"] == pytest.approx(trends, abs=1e-6)
    assert ours["score"] == pytest.approx(report.get_score(), abs=1e-6)
    for row in report.get_details("Column Pair Trends").itertuples(index=False):
        a, b, score, meets = row[0], row[1], row[3], bool(row[7])
        entry = ours["pairs"][f"{a} / {b}"]
        assert entry["meets_threshold"] == meets, (a, b)
        if meets:  # the QualityReport leaves the other pairs unscored (NaN)
            assert entry["score"] == pytest.approx(score, abs=1e-6), (a, b)
    assert ours["score"] < 0.999  # the comparison is not between two perfect scores

    # The standalone metric's binning stays an option: SDMetrics' standalone pair metrics, to 1e-6.
    metric = quality_scores(real, noisy, schema, binning="metric")
    expected_trends, expected_pairs = _sdmetrics_pair_trends(real, noisy, schema)
    assert metric["column_pair_trends"] == pytest.approx(expected_trends, abs=1e-6)
    for (a, b), (score, meets) in expected_pairs.items():
        entry = metric["pairs"][f"{a} / {b}"]
        assert entry["meets_threshold"] == meets
        if meets:
            assert entry["score"] == pytest.approx(score, abs=1e-6), (a, b)


def test_numeric_bins_of_the_report_move_with_each_table_unlike_the_metric_option(real):
    # The QualityReport bins each table over its own range: a synthetic column shifted by a constant keeps
    # its binned contingency score there (and in our overall score), not with the standalone metric's bins.
    shifted = real.copy()
    shifted["age"] = shifted["age"] + 30
    schema = infer_schema(real)
    assert quality_scores(real, shifted, schema)["pairs"]["age / income"]["score"] == pytest.approx(1.0)
    assert quality_scores(real, shifted, schema, binning="metric")["pairs"]["age / income"]["score"] < 0.8
    with pytest.raises(ValueError, match="binning"):
        quality_scores(real, shifted, schema, binning="quantile")

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
    report = evaluate_tables(real, uniform, privacy=False)
    assert report.similarity_score < 0.6
    assert report.detection_auc > 0.9  # a classifier tells these rows from real ones at once


def test_copying_the_training_rows_is_flagged_by_every_privacy_metric(adult):
    train = adult.sample(n=2000, random_state=0)
    holdout = adult.drop(index=train.index).sample(n=2000, random_state=1)
    copied = evaluate_tables(train, train.copy(), holdout=holdout, detection=False)
    p = copied.privacy
    assert p["exact_copy_rate"] > 0.99
    assert p["dcr_synthetic_to_train"]["median"] == 0.0
    assert p["closer_to_train_share"] > 0.9
    assert p["membership_inference_auc"] > 0.9
    assert p["density_attack_auc"] > 0.9
    assert p["nndr_median"] == 0.0
    # An "honest" synthesizer: fresh rows from the same population, neither training nor holdout rows.
    fresh = adult.drop(index=train.index.union(holdout.index)).sample(n=2000, random_state=2)
    honest = evaluate_tables(train, fresh, holdout=holdout, detection=False)
    assert honest.privacy["membership_inference_auc"] < 0.6
    assert honest.privacy["density_attack_auc"] < 0.6
    assert 0.35 < honest.privacy["closer_to_train_share"] < 0.65
    assert honest.privacy["exact_copy_rate"] < 0.01


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


def test_jobs_evaluate_writes_the_report(real, noisy, tmp_path, capsys):
    from jobs.evaluate import main

    real.iloc[:2000].to_csv(tmp_path / "real.csv", index=False)
    real.iloc[2000:].to_csv(tmp_path / "holdout.csv", index=False)
    noisy.to_parquet(tmp_path / "syn.parquet", index=False)
    code = main(["--real", str(tmp_path / "real.csv"), "--synthetic", str(tmp_path / "syn.parquet"), "--holdout",
                 str(tmp_path / "holdout.csv"), "--target", "income", "--out", str(tmp_path / "out")])
    assert code == 0 and "Utility" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "report.json").read_text())["ml_efficacy"] > 0
    assert main(["--real", str(tmp_path / "nope.csv"), "--synthetic", str(tmp_path / "syn.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_ovr_macro_auc_is_sklearns_and_survives_a_missing_class():
    from sklearn.metrics import roc_auc_score

    from engine.tabular.metrics.utility import ovr_macro_auc

    rng = np.random.default_rng(0)
    y = rng.choice(["a", "b", "c"], 300)
    proba = rng.dirichlet(np.ones(3), 300)
    classes = np.array(["a", "b", "c"])
    assert ovr_macro_auc(y, proba, classes) == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", labels=classes), abs=1e-12)
    # A model trained without class "c" cannot rank it: that class scores 0.5, the others as before.
    two = proba[:, :2] / proba[:, :2].sum(axis=1, keepdims=True)
    expected = np.mean([roc_auc_score(y == "a", two[:, 0]), roc_auc_score(y == "b", two[:, 1]), 0.5])
    assert ovr_macro_auc(y, two, classes[:2]) == pytest.approx(expected, abs=1e-12)


def test_ml_efficacy_roc_auc_on_a_multiclass_target(adult):
    from engine.tabular.metrics.utility import ml_efficacy

    rows = adult.sample(n=3000, random_state=4).reset_index(drop=True)
    train, holdout = rows.iloc[:2000], rows.iloc[2000:]
    schema = infer_schema(train)
    assert train["race"].nunique() == 5
    # A "synthetic" training set that lacks one of the real classes (the rarest): still a defined AUC.
    rarest = train["race"].value_counts().index[-1]
    synthetic = train[train["race"] != rarest]
    out = ml_efficacy(train, synthetic, holdout, "race", schema)
    assert out["task"] == "classification"
    for row in out["models"]:
        for source in ("real", "synthetic"):
            assert 0.5 < row[f"roc_auc_{source}"] <= 1.0, (row["model"], source)
    json.dumps(out, allow_nan=False)


def test_a_holdout_split_from_real_data_is_flagged(real, noisy, tmp_path):
    report = QualityEvaluator(detection=False).evaluate_tabular(real_data=real, synthetic_data=noisy, target="income")
    assert report.details["holdout"] == {"rows": 600, "source": "split from real_data"}
    assert report.details["rows"]["holdout"] == 600 and report.details["rows"]["real"] == 2400
    doc = json.loads(report.to_json())
    assert any("synthesizer was most likely trained on them" in n for n in doc["details"]["notes"])
    assert any("may have seen them" in r for r in doc["privacy_readings"])
    page = report.to_html()
    overview = page[page.index("<h2>Overview</h2>"): page.index("<h2>Column shapes</h2>")]
    assert "held out here, after the fact" in overview
    privacy = page[page.index("<h2>Privacy</h2>"):]
    assert "split from the real data after training" in privacy
    assert "tested on holdout rows split from the real data, which the synthesizer may have seen" in page
    # A holdout the caller gives is taken at its word: no such warning.
    given = QualityEvaluator(detection=False).evaluate_tabular(
        real_data=real.iloc[:2400], synthetic_data=noisy, holdout_data=real.iloc[2400:], target="income"
    )
    assert given.details["holdout"]["source"] == "given" and not given.details["notes"]
    assert "holdout_caveat" not in given.privacy
