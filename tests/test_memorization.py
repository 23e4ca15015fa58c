"""Copy and membership readings on feature arrays, on constructed cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import InvalidDataError
from engine.evaluation.memorization import memorization_scores


def _points(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8))


def test_a_copy_of_the_training_set_is_caught_and_fresh_samples_are_not():
    train, holdout, fresh = _points(300, 0), _points(300, 1), _points(300, 2)
    copy = memorization_scores(train, train[:200].copy(), holdout)
    assert copy["exact_copy_rate"] == 1.0 and copy["near_copy_rate"] == 1.0
    assert copy["nearest_real_ratio"] == 0.0 and copy["dcr_share"] == 1.0
    assert copy["membership_auc"] > 0.8  # 200 of the 300 members sit at distance 0 from a synthetic sample
    clean = memorization_scores(train, fresh, holdout)
    assert clean["exact_copy_rate"] == 0.0 and clean["near_copy_rate"] < 0.05
    assert 0.8 < clean["nearest_real_ratio"] < 1.25
    assert abs(clean["dcr_share"] - 0.5) < 0.1 and abs(clean["membership_auc"] - 0.5) < 0.1


def test_without_holdout_only_the_copy_readings():
    train = _points(100, 0)
    out = memorization_scores(train, train + 1e-4)  # near copies, not exact ones
    assert set(out) == {"exact_copy_rate", "near_copy_rate", "nearest_real_ratio"}
    assert out["exact_copy_rate"] == 0.0 and out["near_copy_rate"] == 1.0 and out["nearest_real_ratio"] < 0.01
    with pytest.raises(InvalidDataError, match="synthetic samples"):
        memorization_scores(train, train[:1])


def test_the_image_report_reads_copies_and_membership():
    from engine.images.metrics import ImageEvaluator

    rng = np.random.default_rng(0)
    train, holdout = rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8), rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    evaluator = ImageEvaluator(inception=False, domain_epochs=1, max_images=40).fit(train, holdout=holdout)
    copied = evaluator.evaluate(train.copy())
    assert copied.memorization["exact_copy_rate"] == 1.0 and copied.memorization["membership_auc"] == 1.0
    assert "100.0% exact" in copied.summary() and "membership attack AUC 1.000" in copied.to_html()
    fresh = evaluator.evaluate(rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8))
    assert fresh.memorization["exact_copy_rate"] == 0.0 and fresh.memorization["near_copy_rate"] < 0.1
