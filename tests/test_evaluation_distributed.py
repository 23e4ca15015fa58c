"""The distributed evaluator (Ray Data, streaming, mergeable counts) against the local one."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.core.errors import InvalidDataError
from engine.evaluation import evaluate_tables
from engine.tabular.metrics.distributed import DistributedOptions, evaluate_distributed


def _write(frame, folder, parts=3):
    folder.mkdir()
    for i, part in enumerate(np.array_split(frame, parts)):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def tables(adult, tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    train = adult.sample(n=3000, random_state=1)
    # The holdout must be rows the "synthesizer" never saw: drawn from the rows left out of training.
    holdout = adult.drop(index=train.index).sample(n=1000, random_state=3).reset_index(drop=True)
    train = train.reset_index(drop=True)
    synthetic = adult.sample(n=2500, random_state=2).reset_index(drop=True)
    synthetic.loc[::7, "age"] = np.nan  # missing values the real table does not have
    return {
        "frames": (train, synthetic, holdout),
        "paths": (_write(train, root / "train"), _write(synthetic, root / "synthetic"), _write(holdout, root / "holdout", 1)),
    }


def _same(a, b, tol):
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or math.isnan(a)) and (b is None or math.isnan(b))
    return abs(a - b) <= tol


def test_distributed_scores_equal_the_local_ones(ray_session, tables):
    train, synthetic, _ = tables["frames"]
    train_dir, synthetic_dir, _ = tables["paths"]
    local = evaluate_tables(train, synthetic, privacy=False, detection=False)
    # Small batches: many blocks, so the merging is exercised.
    dist = evaluate_distributed(
        str(train_dir), str(synthetic_dir), privacy=False, detection=False, options=DistributedOptions(batch_rows=800)
    )
    assert dist.details["distributed"]["approximate"] == {}
    assert dist.details["distributed"]["range_source"]["real"] == "parquet footers"
    for attr in ("similarity_score", "column_shapes_score", "column_pair_trends_score", "correlation_score", "ks_statistic"):
        assert getattr(dist, attr) == pytest.approx(getattr(local, attr), abs=1e-9), attr
    assert local.similarity_score < 0.99  # not two perfect scores
    for name, entry in local.details["columns"].items():
        for metric in ("score", "wasserstein", "missing_rate_similarity", "coverage"):
            assert _same(entry.get(metric), dist.details["columns"][name].get(metric), 1e-9), (name, metric)
    for key, entry in local.details["pairs"].items():
        # Spearman included: here the samples hold every row, so it is exact too.
        for metric in ("score", "spearman_similarity", "cramers_v_real", "cramers_v_synthetic", "meets_threshold"):
            assert _same(entry.get(metric), dist.details["pairs"][key].get(metric), 1e-9), (key, metric)


def test_histogram_mode_stays_within_its_stated_error(ray_session, tables):
    train, synthetic, _ = tables["frames"]
    local = evaluate_tables(train, synthetic, privacy=False, detection=False)
    # DataFrames in (Ray Datasets without Parquet footers): the ranges come from a pass over the data.
    dist = evaluate_distributed(
        train, synthetic, privacy=False, detection=False, options=DistributedOptions(exact_values=50, histogram_bins=256)
    )
    assert dist.details["distributed"]["range_source"]["real"] == "a pass over the numeric columns"
    approximate = dist.details["distributed"]["approximate"]
    assert {"fnlwgt", "age"} <= set(approximate)  # more than 50 distinct values: histograms
    for name, bounds in approximate.items():
        exact, estimate = local.details["columns"][name]["ks_statistic"], dist.details["columns"][name]["ks_statistic"]
        assert estimate - 1e-12 <= exact <= estimate + bounds["ks_statistic_max_error"] + 1e-12, name
        w_exact, w_estimate = local.details["columns"][name]["wasserstein"], dist.details["columns"][name]["wasserstein"]
        assert abs(w_exact - w_estimate) <= bounds["wasserstein_max_error"] + 1e-12, name
    # Pair trends do not depend on the histograms: still exact.
    assert dist.column_pair_trends_score == pytest.approx(local.column_pair_trends_score, abs=1e-9)


def test_distributed_privacy_on_a_stated_sample_flags_copies(ray_session, tables, tmp_path):
    train, _, holdout = tables["frames"]
    train_dir, _, holdout_dir = tables["paths"]
    copies = _write(train.sample(frac=1.0, random_state=5), tmp_path / "copies", 2)
    report = evaluate_distributed(
        str(train_dir), str(copies), holdout=str(holdout_dir), target="income", detection=False,
        options=DistributedOptions(sample_rows=1000),
    )
    sampled = report.details["distributed"]["sample_rows"]
    assert sampled == {"real": 1000, "synthetic": 1000, "holdout": 1000}
    assert report.details["rows"] == {"real": 3000, "synthetic": 3000, "holdout": 1000}
    p = report.privacy
    # The copies are checked against the hashes of all 3,000 training rows, not only the sampled ones.
    assert p["exact_copy_rate"] == 1.0
    # The distance metrics see a third of the training rows: only the copies of sampled training rows sit at
    # distance 0 (1/3 + 2/3 * 1/2 = 2/3 expected). Still far above the 50% of a generator that does not copy.
    assert p["closer_to_train_share"] > 0.6 and p["membership_inference_auc"] > 0.6
    assert report.ml_efficacy is not None and report.similarity_score == pytest.approx(1.0)
    assert "1,000" in " ".join(report.to_dict()["privacy_readings"])


def test_distributed_errors_name_the_problem(ray_session, tables, tmp_path):
    train_dir, synthetic_dir, _ = tables["paths"]
    with pytest.raises(InvalidDataError, match="does not exist"):
        evaluate_distributed(str(tmp_path / "nope"), str(synthetic_dir))
    with pytest.raises(InvalidDataError, match="target column 'salary'"):
        evaluate_distributed(str(train_dir), str(synthetic_dir), target="salary")
    with pytest.raises(InvalidDataError, match="'sample_rows'.*positive integer; got 0"):
        DistributedOptions(sample_rows=0)
