"""Private image synthesis behind ``DPSynthesizer(model="dp_dcgan")``: what is released, and the training within budget.

Images are read as :class:`~engine.images.synthesizer.ImageSynthesizer` reads them (arrays,
folders, ``.npz``, Parquet, ``ImageSet``). What the pipeline learns from them:

- **The image shape** (side, channels): the requested ``image_size``/``channels`` or the
  data's shape, treated as public metadata (as a table's schema is). Pixels are scaled from
  the public range [0, 255]: no pixel statistic is read.
- **The class names** (conditional models): public when given as ``public_categories={"label": [...]}``
  (images of any other label are refused); otherwise released by the stability histogram
  of :func:`~engine.privacy.preprocessing.private_categories` (``preprocessing_fraction`` of
  epsilon, ``delta_fraction`` of delta): a label held by few images is unlikely to appear,
  and the images of a label that does not appear are left out of training.
- **The class frequencies** the generated images' labels are drawn from (in training and
  when sampling): the noisy counts of that release, or, with public class names, Laplace
  counts paid with ``counts_fraction`` of epsilon.
- **The discriminator**, by DP-SGD (:class:`~engine.privacy.models.dp_dcgan.DPDCGAN`) with the
  rest of the budget; training stops where the accountant says it ends.

Every release is spent on one :class:`~engine.privacy.accounting.PrivacyLedger`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidDataError
from engine.privacy.accounting import PrivacyLedger, check_budget, plan_epochs
from engine.privacy.errors import PrivacyBudgetError
from engine.privacy.preprocessing import laplace, private_categories

IMAGE_MODELS = ("dp_dcgan",)
DEFAULT_EPOCHS = {"dp_dcgan": 20}
LABEL = "label"  # the key of public_categories that names the public classes


@dataclass
class PrivateImageFit:
    """What :func:`fit_private_images` returns to the front door."""

    synthesizer: Any  # a fitted ImageSynthesizer holding the DP-DCGAN
    ledger: PrivacyLedger
    privacy: dict[str, Any]


def _classes(dp: Any, image_set: Any, ledger: PrivacyLedger, rng: np.random.Generator) -> tuple[Any, np.ndarray | None, list[dict]]:
    """The image set restricted to its public or released classes, and their noisy frequencies."""
    from engine.images.io import ImageSet

    if image_set.labels is None:
        return image_set, None, []
    names = [str(c) for c in image_set.class_names]
    observed = np.asarray(names, dtype=object)[image_set.labels]
    public = dp.public_categories.get(LABEL)
    eps = dp.epsilon
    if public is not None:
        classes = [str(c) for c in public]
        unknown = sorted(set(observed) - set(classes))
        if not classes or unknown:
            raise InvalidDataError(
                f"public_categories['label'] must list every class of the images (at least one); "
                f"the images also have {', '.join(map(repr, unknown[:5]))}." if unknown else
                "public_categories['label'] must list at least one class."
            )
        codes = pd.Categorical(observed, categories=classes).codes.astype(np.int64)
        eps_counts = min(dp.counts_fraction * eps, ledger.epsilon_left)
        noisy = laplace(np.bincount(codes, minlength=len(classes)), eps_counts, rng)
        ledger.spend("class counts for the labels of generated images (Laplace)", eps_counts)
        releases = [{"what": "class counts", "epsilon": eps_counts, "delta": 0.0, "classes": "public"}]
    else:
        eps_c, delta_c = dp.preprocessing_fraction * eps, dp.delta_fraction * dp.delta
        released, noisy_sorted, _ = private_categories(pd.Series(observed), eps_c, delta_c, rng, max_categories=10_000)
        ledger.spend("class names and counts (stability histogram)", eps_c, delta_c)
        releases = [{"what": "class names and counts", "epsilon": eps_c, "delta": delta_c, "classes": "released"}]
        if not released:
            raise PrivacyBudgetError(
                f"No class of the labels survived the private release at epsilon = {eps_c:.3g} (delta = {delta_c:.3g}): "
                "give the class names as public_categories={'label': [...]}, or raise epsilon."
            )
        order = sorted(range(len(released)), key=lambda i: names.index(released[i]))  # the data's class order
        classes = [released[i] for i in order]
        noisy = np.asarray(noisy_sorted, dtype=np.float64)[order]
        codes = pd.Categorical(observed, categories=classes).codes.astype(np.int64)
    keep = codes >= 0
    freqs = np.clip(noisy, 0, None) + 1e-3
    image_set = ImageSet(image_set.images[keep], codes[keep], classes)
    return image_set, freqs / freqs.sum(), releases


def fit_private_images(
    dp: Any, images: Any, labels: Any = None, *, epochs: int | None = None, seed: int = 0, show_progress: bool = False
) -> PrivateImageFit:
    """Fit ``dp.model`` on ``images`` within ``(dp.epsilon, dp.delta)``; ``dp`` is the :class:`DPSynthesizer`."""
    from engine.images.synthesizer import ImageSynthesizer
    from engine.images.transforms import ImagePreprocessor

    started = time.perf_counter()
    pre = ImagePreprocessor(dp.image_size, dp.channels)
    image_set = pre.prepare(images, labels)
    n = len(image_set)
    check_budget(dp.epsilon, dp.delta, n)
    ledger = PrivacyLedger(dp.epsilon, dp.delta)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    image_set, freqs, releases = _classes(dp, image_set, ledger, rng)
    if len(image_set) == 0:
        raise InvalidDataError("No image is left to train on: none has a class that was released.")
    pre.fit(image_set)

    plan = plan_epochs(  # rows = n, not the kept images: the accountant's unit is the input
        ledger, rows=n, epochs=DEFAULT_EPOCHS[dp.model] if epochs is None else epochs, expected_batch_size=dp.expected_batch_size,
        max_grad_norm=dp.max_grad_norm, accountant=dp.accountant, noise_multiplier=dp.noise_multiplier,
    )
    model_config = {**dp.model_config, **plan.model_config(seed), "class_frequencies": [] if freqs is None else freqs.tolist()}
    synth = ImageSynthesizer(
        dp.model, image_size=dp.image_size, channels=dp.channels, model_config=model_config,
        num_workers=dp.num_workers, show_progress=show_progress,
    )
    # Poisson batches ignore batch_size; the run is counted in steps (the budget's), not epochs.
    model = synth._train_torch(
        layout=pre.layout, data=pre.transform(image_set), epochs=1, batch_size=max(2, dp.expected_batch_size),
        seed=seed, show_progress=show_progress, max_steps=plan.steps, checkpoint_every=10**6,
    )
    steps_done = int(model.private_steps)
    eps_train = plan.spend(ledger, steps_done, "DP-SGD training of the discriminator")
    info: dict[str, Any] = {
        "model": dp.model, "epsilon": dp.epsilon, "delta": dp.delta, "num_images": n,
        "mechanism": "DP-SGD (Opacus) on the discriminator, Poisson sampling; the generator is post-processing",
        "accountant": dp.accountant, "noise_multiplier": plan.noise_multiplier, "max_grad_norm": plan.max_grad_norm,
        "sample_rate": plan.sample_rate, "steps": steps_done, "steps_requested": plan.steps_requested,
        "epsilon_training": eps_train, "delta_training": plan.delta, "num_workers": dp.num_workers,
        "discriminator_norm": "GroupNorm(1, C) (per-image LayerNorm; no BatchNorm)", "loss": "non-saturating GAN loss",
        "classes": releases[0]["classes"] if releases else "none (unconditional)",
        "noise_placement": "once per step on rank 0 over all workers (Opacus DistributedDPOptimizer)",
        "secure_rng": False,
        "epsilon_spent": ledger.epsilon_spent, "delta_spent": ledger.delta_spent, "ledger": ledger.to_dict(),
        "fit_seconds": time.perf_counter() - started,
    }
    model.privacy_ = info  # saved in the artifact's model_state.json
    synth._model, synth._preprocessor = model, pre
    synth.class_frequencies_ = freqs  # the released frequencies: sampling never reads the real counts
    return PrivateImageFit(synth, ledger, info)
