"""The image front door: ``ImageSynthesizer`` and the named models ``DCGAN``, ``WGANGP``, ``DDPM``.

``fit``/``train`` read images (array, folder, ``.npz``, Parquet), fit the
image preprocessor and train the model through the engine's one Ray Train
loop; ``generate`` returns exactly the images asked for, of the requested
classes; ``save``/``load`` write the same JSON + safetensors artifact as the
tabular models. Given a diffusers model id or a local pipeline folder instead
of a model name, ``ImageSynthesizer`` wraps a pretrained text-to-image pipeline.

Example::

    gan = DCGAN(latent_dim=100, image_size=28, channels=1).train(x_train, labels=y_train, epochs=20)
    sevens = gan.generate(num_samples=64, labels=7, seed=0)        # uint8 (64, 28, 28, 1)
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from engine.core.contract import TorchSynthModel
from engine.core.errors import InvalidDataError, InvalidOptionError
from engine.core.seeds import seed_streams
from engine.core.synthesizer import Synthesizer, check_count, check_seed, reading
from engine.images.io import ImageSet, image_set_from_table, image_table, save_dataset
from engine.images.transforms import ImagePreprocessor
from engine.store.artifact import Artifact
from engine.training.config import ScalingOptions

DEFAULT_EPOCHS = {"dcgan": 25, "wgan_gp": 25, "ddpm": 50}
DEFAULT_BATCH_SIZE = {"dcgan": 64, "wgan_gp": 64, "ddpm": 64}
Labels = Any  # None, one label, a sequence of labels, or {label: count}


class ImageSynthesizer(Synthesizer):
    """Learn a set of images and generate new ones like it, optionally of requested classes.

    Args:
        model: ``"dcgan"``, ``"wgan_gp"`` or ``"ddpm"`` to train a model; a
            diffusers model id or a local pipeline folder to use a pretrained
            text-to-image pipeline (see :meth:`generate` with ``prompt=``).
        image_size: side of the square images the model sees; ``None`` keeps
            the data's (square) size.
        channels: 1 (grey) or 3 (colour); ``None`` keeps the data's.
        model_config: hyperparameters of the model (see its config class).
        num_workers, use_gpu, cpus_per_worker: how Ray Train scales training.
        checkpoint_every, storage_path, run_name, max_failures, show_progress:
            as for ``TabularSynthesizer`` (see ``TrainOptions``).
    """

    modality = "image"
    default_epochs = DEFAULT_EPOCHS
    default_batch_size = DEFAULT_BATCH_SIZE

    def __init__(
        self,
        model: str = "dcgan",
        *,
        image_size: int | None = None,
        channels: int | None = None,
        model_config: Mapping[str, Any] | None = None,
        num_workers: int = 1,
        use_gpu: bool | None = None,
        cpus_per_worker: float | None = None,
        checkpoint_every: int = 10,
        storage_path: str | None = None,
        run_name: str | None = None,
        max_failures: int = 0,
        show_progress: bool = True,
        **pipeline_options: Any,
    ):
        self.image_size = image_size
        self.channels = channels
        self.checkpoint_every = checkpoint_every
        self.storage_path = storage_path
        self.run_name = run_name
        self.max_failures = max_failures
        self.show_progress = show_progress
        self._pipeline = None
        self._model: TorchSynthModel | None = None
        self._preprocessor: ImagePreprocessor | None = None
        self.class_frequencies_: np.ndarray | None = None
        if model in self.modality_info().models:
            if pipeline_options:
                raise InvalidOptionError(
                    f"Unknown option(s) {', '.join(sorted(pipeline_options))} for the {model!r} model."
                )
            super().__init__(model, model_config=model_config, num_workers=num_workers, use_gpu=use_gpu,
                             cpus_per_worker=cpus_per_worker)
            return
        # Not a trained model: a pretrained text-to-image pipeline (a hub id or a local folder).
        if not isinstance(model, str) or ("/" not in model and not os.path.isdir(model)):
            raise InvalidOptionError(
                f"The 'model' parameter of ImageSynthesizer must be one of {', '.join(map(repr, self.modality_info().models))}, "
                f"a local diffusers pipeline folder or a hub id such as 'org/name'. Got {model!r} instead."
            )
        if model_config:
            raise InvalidOptionError("model_config applies to trained models; a pretrained pipeline takes no model_config.")
        from engine.images.pretrained.pipeline import PretrainedDiffusion

        self.model = model
        self.model_config = {}
        self.scaling = ScalingOptions(num_workers=num_workers, use_gpu=use_gpu, cpus_per_worker=cpus_per_worker)
        self.training_options_, self.history_ = {}, []
        self._pipeline = PretrainedDiffusion(model, **pipeline_options)

    @property
    def is_pretrained(self) -> bool:
        return self._pipeline is not None

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        images: Any,
        labels: Any = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> ImageSynthesizer:
        """Train on ``images`` (uint8 ``(N, H, W)`` / ``(N, H, W, C)``, a folder, ``.npz`` or Parquet).

        ``labels`` (one per image, or from class sub-folders / the file) make
        the model class-conditional.
        """
        if self.is_pretrained:
            raise InvalidOptionError(f"{self.model!r} is a pretrained pipeline; it generates from prompts and is not trained here.")
        preprocessor = ImagePreprocessor(self.image_size, self.channels)
        image_set = preprocessor.prepare(images, labels)
        preprocessor.fit(image_set)
        model = self._train_torch(
            layout=preprocessor.layout, data=preprocessor.transform(image_set), epochs=epochs, batch_size=batch_size,
            seed=seed, checkpoint_every=self.checkpoint_every, storage_path=self.storage_path, run_name=self.run_name,
            max_failures=self.max_failures, show_progress=self.show_progress,
        )
        self._model, self._preprocessor = model, preprocessor
        if image_set.labels is not None:
            counts = np.bincount(image_set.labels, minlength=preprocessor.layout.num_classes)
            self.class_frequencies_ = counts / counts.sum()
        return self

    train = fit  # the name image-GAN users reach for

    # --------------------------------------------------------------- sample
    def _require_fitted(self) -> tuple[TorchSynthModel, ImagePreprocessor]:
        if self._model is None or self._preprocessor is None:
            raise self._not_fitted()
        return self._model, self._preprocessor

    @property
    def class_names(self) -> list[str]:
        """The classes the model can be asked for (empty when trained without labels)."""
        return list(self._require_fitted()[1].layout.class_names)

    def _label_codes(self, num_samples: int | None, labels: Labels, rng: np.random.Generator) -> tuple[int, np.ndarray | None]:
        """The number of images and one class index per image (``None`` for an unconditional model)."""
        _, pre = self._require_fitted()
        conditional = pre.layout.num_classes > 0
        if labels is None:
            n = check_count(num_samples)
            if not conditional:
                return n, None
            # The training data's class mix, drawn from the seed.
            return n, rng.choice(pre.layout.num_classes, size=n, p=self.class_frequencies_).astype(np.int64)
        if not conditional:
            raise InvalidDataError("This model was trained without labels; generate it without 'labels'.")
        if isinstance(labels, Mapping):
            keys = list(labels)
            # A label may be asked 0 times (a generated request); the request as a whole may not be empty.
            counts = [check_count(labels[k], f"labels[{k!r}]", minimum=0) for k in keys]
            codes = np.repeat(pre.label_codes(keys), counts)
            if len(codes) == 0:
                raise InvalidDataError(f"labels asks for no image at all ({dict(labels)!r}); at least one count must be >= 1.")
            if num_samples is not None and num_samples != len(codes):
                raise InvalidDataError(f"labels ask for {len(codes)} images in all but num_samples is {num_samples}.")
            return len(codes), codes
        if isinstance(labels, (str, int, np.integer)):
            n = check_count(num_samples)
            return n, np.full(n, pre.label_codes([labels])[0], dtype=np.int64)
        if num_samples is not None:
            check_count(num_samples)
        codes = pre.label_codes(list(labels))
        if len(codes) == 0:
            raise InvalidDataError("labels is an empty sequence; give one label per image (at least one).")
        if num_samples is not None and num_samples != len(codes):
            raise InvalidDataError(f"labels holds {len(codes)} labels but num_samples is {num_samples}; give one label per image.")
        return len(codes), codes

    def sample(
        self, num_samples: int | None = None, *, labels: Labels = None, seed: int | None = None, stream: int = 0,
        **generate_options: Any,
    ) -> ImageSet:
        """Exactly ``num_samples`` images (an integer >= 1) and the label of each, as an :class:`ImageSet`.

        Args:
            labels: ``None`` (the training class mix, or unconditional), one
                label for all images, one label per image, or ``{label: count}``
                (then ``num_samples`` may be left out). Labels are class names
                (``"7"``) or indices.
            seed: the same seed gives the same images; ``None`` draws a fresh one.
            stream: the sharded sampler's shard index, for independent shards.
            generate_options: model-specific (e.g. ``sampler="ddim", steps=50`` for DDPM).
        """
        model, pre = self._require_fitted()
        allowed = {n for n, p in inspect.signature(model.generate).parameters.items() if p.kind is p.KEYWORD_ONLY}
        if set(generate_options) - allowed:
            raise InvalidOptionError(
                f"Unknown generation option(s) {', '.join(sorted(set(generate_options) - allowed))} for the {self.model!r} "
                f"model; it takes {', '.join(sorted(allowed)) or 'none'}."
            )
        gen, rng = seed_streams(check_seed(seed), stream)
        n, codes = self._label_codes(num_samples, labels, rng)
        rows = model.generate(n, codes, gen, **generate_options)
        return ImageSet(pre.pixels_to_uint8(rows), codes, list(pre.layout.class_names) or None)

    def generate(
        self, num_samples: int | None = None, labels: Labels = None, seed: int | None = None, *,
        prompt: str | None = None, **options: Any,
    ) -> np.ndarray:
        """Exactly ``num_samples`` images, uint8 ``(N, H, W, C)``.

        For a trained model, ``labels`` and ``seed`` are as in :meth:`sample`.
        For a pretrained pipeline, ``prompt`` is required and ``options`` go
        to the pipeline (``guidance_scale``, ``num_inference_steps``, ...).
        """
        if self.is_pretrained:
            if prompt is None:
                raise InvalidOptionError(f"The pretrained pipeline {self.model!r} generates from a text prompt: pass prompt=...")
            if labels is not None:
                raise InvalidOptionError("A pretrained text-to-image pipeline takes a prompt, not labels.")
            return self._pipeline.generate(prompt, 1 if num_samples is None else check_count(num_samples), seed=seed, **options)
        if prompt is not None:
            raise InvalidOptionError(f"The {self.model!r} model generates by class label, not from a prompt.")
        return self.sample(num_samples, labels=labels, seed=seed, **options).images

    def generate_batch(self, prompts: Sequence[str], num_samples_per_prompt: int = 1, **options: Any):
        """Images for many prompts in batches (pretrained pipelines only); see ``PretrainedDiffusion.generate_batch``."""
        if not self.is_pretrained:
            raise InvalidOptionError(f"generate_batch takes prompts; the {self.model!r} model generates by label (use generate).")
        return self._pipeline.generate_batch(list(prompts), num_samples_per_prompt, **options)

    def sample_table(self, num_rows: int, *, conditions: Labels = None, seed: int, stream: int = 0, row_offset: int = 0) -> pa.Table:
        """One shard of the sharded sampler: PNG images and labels as an Arrow table (see ``engine.images.io``)."""
        del row_offset  # images carry no identifiers to keep unique across shards
        result = self.sample(num_rows, labels=_shard_labels(_label_condition(conditions)), seed=seed, stream=stream)
        return image_table(result.images, result.labels, result.class_names)

    def parse_conditions(self, conditions: Labels) -> None:
        """Validate sampling conditions (the requested labels) before a sharded run starts.

        Sharded sampling takes one label for every image, or None for the
        training class mix; anything else is refused here, on the driver,
        rather than in every shard's actor.
        """
        self._require_fitted()
        conditions = _shard_labels(_label_condition(conditions))
        if conditions is not None:
            self._label_codes(1, conditions, np.random.default_rng(0))

    def to_device(self, device: str | torch.device) -> str:
        """Move the model to ``device``; returns the device it now runs on."""
        model, _ = self._require_fitted()
        model.to(torch.device(device))
        return str(model.device)

    def coerce_conditions(self, conditions: Labels) -> Labels:
        """A request's condition: ``{"label": "7"}`` or one label, or None for the training class mix."""
        return _label_condition(conditions)

    def write_samples(self, table: pa.Table, out: str, format: str | None = None) -> str:
        """Images as :meth:`sample_table` gives them, to the folder ``out``: Parquet (PNG bytes, labels) or PNG files."""
        fmt = format or "parquet"
        if fmt not in ("parquet", "folder"):
            raise InvalidOptionError(f"Images are written as 'parquet' or 'folder' (PNG files by class); got {fmt!r}.")
        save_dataset(image_set_from_table(table), out, format=fmt)
        return f"wrote {table.num_rows} images to {out} ({fmt})"

    def describe(self) -> dict[str, Any]:
        """Image shape, classes and training metrics."""
        layout = self._require_fitted()[1].layout
        return {
            **super().describe(),
            "image": {"height": layout.height, "width": layout.width, "channels": layout.channels},
            "classes": list(layout.class_names),
        }

    # ------------------------------------------------------------- evaluate
    def evaluate(
        self, real_images: Any, real_labels: Any = None, *, holdout: Any = None, holdout_labels: Any = None,
        num_samples: int | None = None, seed: int = 0, generate_options: Mapping[str, Any] | None = None,
        **evaluator_options: Any,
    ):
        """Generate images and score them against real ones: an :class:`~engine.images.metrics.ImageReport`.

        Args:
            real_images, real_labels: the real images (any source ``read_images`` accepts).
            holdout, holdout_labels: held-out real images, for the real-vs-real floor.
            num_samples: images to generate (default: as many as are compared, ``max_images``
                or fewer when the real set is smaller); drawn in the training class mix.
            generate_options: passed to ``sample`` (e.g. ``{"sampler": "ddim", "steps": 50}``).
            evaluator_options: passed to :class:`~engine.images.metrics.ImageEvaluator`
                (``max_images``, ``inception``, ``domain``, ...).
        """
        from engine.images.metrics import ImageEvaluator

        self._require_fitted()
        evaluator = ImageEvaluator(**evaluator_options).fit(real_images, real_labels, holdout=holdout, holdout_labels=holdout_labels)
        generated = self.sample(evaluator.n_ if num_samples is None else num_samples, seed=seed, **dict(generate_options or {}))
        return evaluator.evaluate(generated)

    # ------------------------------------------------------------ save/load
    def _artifact(self) -> Artifact:
        model, pre = self._require_fitted()
        return Artifact(
            model=self.model,
            config={},
            schema=pre.layout.to_dict(),
            preprocessor={
                **pre.to_dict(),
                "class_frequencies": None if self.class_frequencies_ is None else self.class_frequencies_.tolist(),
            },
            model_state=model.extra_state(),
            tensors=model.state_tensors(),
        )

    @classmethod
    def _from_artifact(cls, art: Artifact) -> ImageSynthesizer:
        cfg = art.config
        with reading("config.json"):
            synth = cls(art.model, model_config=cfg.get("model_config", {}), **cfg.get("scaling", {}))
        with reading("preprocessor.json"):
            pre = ImagePreprocessor.from_dict(art.preprocessor)
            freqs = art.preprocessor.get("class_frequencies")
        synth.image_size, synth.channels = pre.image_size, pre.channels
        with reading("model_state.json and weights.safetensors"):
            model = synth.model_class()(synth._config_object(), pre.layout)
            model.load_state_tensors(art.tensors)
            model.load_extra_state(art.model_state)
        synth._model, synth._preprocessor = model, pre
        synth.class_frequencies_ = None if freqs is None else np.asarray(freqs, dtype=np.float64)
        return synth


def _label_condition(conditions: Labels) -> Labels:
    """The label asked for by a condition: ``{"label": x}`` is ``x``; a bare label or None is itself."""
    if isinstance(conditions, Mapping) and list(conditions) == ["label"]:
        return conditions["label"]
    return conditions


def _shard_labels(conditions: Labels) -> Labels:
    """The sharded sampler's condition for every shard: one label for all, or the class mix when None."""
    if conditions is None or (isinstance(conditions, (str, int, np.integer)) and not isinstance(conditions, bool)):
        return conditions
    # A {label: count} mapping would need the shard layout (total rows, each shard's offset) to split
    # exact counts across shards; the sampler does not pass it here, so refuse rather than miscount.
    what = "a {label: count} mapping" if isinstance(conditions, Mapping) else f"a {type(conditions).__name__}"
    raise InvalidDataError(
        f"Sharded image sampling takes one label for every image (e.g. conditions='7') or None for the training "
        f"class mix; got {what}: {conditions!r}. For exact counts per label, write one sharded sample per label "
        "(conditions=label, num_rows=count), or use sample(labels={label: count}) for a count that fits in memory."
    )


class _NamedModel(ImageSynthesizer):
    """An :class:`ImageSynthesizer` fixed to one model, with its hyperparameters as keywords."""

    model_name: str = ""
    config_keys: tuple[str, ...] = ()

    def __init__(self, *, image_size: int | None = None, channels: int | None = None, **kwargs: Any):
        config = {k: kwargs.pop(k) for k in list(kwargs) if k in self.config_keys}
        config.update(kwargs.pop("model_config", None) or {})
        super().__init__(self.model_name, image_size=image_size, channels=channels, model_config=config, **kwargs)


class DCGAN(_NamedModel):
    """DCGAN (unconditional, or class-conditional when trained with labels).

    ``DCGAN(latent_dim=100, image_size=64, channels=3).train(images, labels=None, epochs=..., batch_size=...)``
    """

    model_name = "dcgan"
    config_keys = ("latent_dim", "generator_width", "discriminator_width", "lr", "betas", "discriminator_norm")


class WGANGP(_NamedModel):
    """WGAN-GP: ``WGANGP(critic_iterations=5, gp_weight=10).train(images, labels=...)``."""

    model_name = "wgan_gp"
    config_keys = DCGAN.config_keys + ("critic_iterations", "gp_weight")


class DDPM(_NamedModel):
    """DDPM with a diffusers UNet: ``DDPM(image_size=28, timesteps=1000).train(images)``, then ``sample(num_samples=...)``."""

    model_name = "ddpm"

    @property
    def config_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        from dataclasses import fields

        return tuple(f.name for f in fields(self.modality_info().model_class("ddpm").config_class))
