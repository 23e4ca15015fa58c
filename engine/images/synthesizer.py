"""The image front door: ``ImageSynthesizer``, the named models ``DCGAN``, ``WGANGP``, ``DDPM``, and ``StableDiffusionSynthesizer``.

``fit``/``train`` read images (array, folder, ``.npz``, Parquet), fit the
image preprocessor and train the model through the engine's one Ray Train
loop; ``generate`` returns exactly the images asked for, of the requested
classes; ``save``/``load`` write the same JSON + safetensors artifact as the
tabular models. Given a pipeline short name (``"stable-diffusion-v1-5"``), a
diffusers hub id or a local pipeline folder instead of a model name,
``ImageSynthesizer`` wraps a pretrained text-to-image pipeline
(``StableDiffusionSynthesizer`` is that case under its own name).

Example::

    gan = DCGAN(latent_dim=100, image_size=28, channels=1).train(x_train, labels=y_train, epochs=20)
    sevens = gan.generate(num_samples=64, labels=7, seed=0)        # uint8 (64, 28, 28, 1)
    sd = ImageSynthesizer(model="stable-diffusion-v1-5", resolution=512)
    cats = sd.generate(prompt="a photo of a cat", num_samples=8, guidance_scale=7.5)  # uint8 (8, 512, 512, 3)
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
from engine.core.errors import InvalidConditionError, InvalidDataError, InvalidOptionError
from engine.core.labels import LABEL_COLUMN, ClassLabelled, label_codes, per_class_share
from engine.core.params import did_you_mean
from engine.core.seeds import seed_streams
from engine.core.synthesizer import FrontDoorOption, Synthesizer, check_count, check_generate_options, check_seed, reading
from engine.images.io import ImageSet, image_set_from_table, image_table, save_dataset
from engine.images.transforms import ImagePreprocessor
from engine.store.artifact import Artifact
from engine.training.config import ScalingOptions

DEFAULT_EPOCHS = {"dcgan": 25, "wgan_gp": 25, "ddpm": 50}
DEFAULT_BATCH_SIZE = {"dcgan": 64, "wgan_gp": 64, "ddpm": 64}
Labels = Any  # None, one label, a sequence of labels, or {label: count}


class ImageSynthesizer(ClassLabelled, Synthesizer):
    """Learn a set of images and generate new ones like it, optionally of requested classes.

    Args:
        model: ``"dcgan"``, ``"wgan_gp"`` or ``"ddpm"`` to train a model; a
            short pipeline name (``"stable-diffusion-v1-5"``, ``"sdxl"``, ...; see
            ``engine.images.pretrained.source.KNOWN_PIPELINES``), a diffusers hub
            id or a local pipeline folder to use a pretrained text-to-image
            pipeline (see :meth:`generate` with ``prompt=``). Hub ids load from
            the local Hugging Face cache when they are there, without network.
        image_size: side of the square images the model sees; ``None`` keeps
            the data's (square) size.
        resolution: the same as ``image_size`` (either name); for a pretrained
            pipeline, the side of the square images it generates (``height`` and
            ``width``, a multiple of 8; ``None`` keeps the pipeline's native size).
        channels: 1 (grey) or 3 (colour); ``None`` keeps the data's.
        model_config: hyperparameters of the model (see its config class).
        num_workers, use_gpu, cpus_per_worker: how Ray Train scales training.
        checkpoint_every, storage_path, run_name, max_failures, show_progress:
            as for ``TabularSynthesizer`` (see ``TrainOptions``).
    """

    modality = "image"
    sample_unit = "image"
    label_error = InvalidDataError
    default_epochs = DEFAULT_EPOCHS
    default_batch_size = DEFAULT_BATCH_SIZE

    def __init__(
        self,
        model: str = "dcgan",
        *,
        image_size: int | None = None,
        resolution: int | None = None,
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
        image_size = _image_side(image_size, resolution)
        self.image_size = image_size
        self.channels = channels
        self.checkpoint_every = checkpoint_every
        self.storage_path = storage_path
        self.run_name = run_name
        self.max_failures = max_failures
        self.show_progress = show_progress
        self._pipeline = None
        self._generation_defaults: dict[str, Any] = {}
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
        # Not a trained model: a pretrained text-to-image pipeline (a short name, a hub id or a local folder).
        from engine.images.pretrained.source import KNOWN_PIPELINES, is_pipeline_name, known_pipeline

        if not is_pipeline_name(model):
            raise InvalidOptionError(
                f"The 'model' parameter of ImageSynthesizer must be one of {', '.join(map(repr, self.modality_info().models))}, "
                f"a pipeline short name ({', '.join(map(repr, KNOWN_PIPELINES))}), a local diffusers pipeline folder "
                f"or a hub id such as 'org/name'. Got {model!r} instead."
            )
        if model_config:
            raise InvalidOptionError("model_config applies to trained models; a pretrained pipeline takes no model_config.")
        name = "resolution" if resolution is not None else "image_size"
        if image_size is not None and check_count(image_size, name) % 8:
            # Latent diffusion pipelines work on 8x8-pixel latent cells; say so before loading gigabytes of weights.
            raise InvalidOptionError(
                f"The {name!r} parameter of a pretrained pipeline must be a multiple of 8 (its latents are 1/8 of the "
                f"image side). Got {image_size!r} instead; e.g. {max(8, image_size // 8 * 8)} or {image_size // 8 * 8 + 8}."
            )
        from engine.images.pretrained.pipeline import PretrainedDiffusion

        self.model = os.fspath(model)
        self.model_config = {}
        self.scaling = ScalingOptions(num_workers=num_workers, use_gpu=use_gpu, cpus_per_worker=cpus_per_worker)
        self.training_options_, self.history_ = {}, []
        self._pipeline = PretrainedDiffusion(model, **pipeline_options)
        # What a call leaves out: the model's own needs (turbo models: no guidance, one step), then the resolution.
        known = known_pipeline(model)
        self._generation_defaults = dict(known.generation_defaults) if known is not None else {}
        if image_size is not None:
            self._generation_defaults.update(height=image_size, width=image_size)

    @property
    def is_pretrained(self) -> bool:
        """Whether this front door wraps a pretrained text-to-image pipeline (rather than a model trained here)."""
        return self._pipeline is not None

    @property
    def resolution(self) -> int | None:
        """The side of the square images: ``image_size`` under the name pipelines use (None: the data's or the pipeline's)."""
        return self.image_size

    @classmethod
    def cli_options(cls) -> tuple[FrontDoorOption, ...]:
        """The size and channels images are trained at (see :class:`FrontDoorOption`)."""
        return (
            FrontDoorOption("image_size", "resize images to this square size (default: keep)", stage="init", type=int),
            FrontDoorOption("channels", "1 grey or 3 colour (default: keep)", stage="init", type=int, choices=(1, 3)),
        )

    @classmethod
    def file_formats(cls) -> tuple[str, ...]:
        """What :meth:`write_samples` writes to a folder: Parquet (PNG bytes, labels) or PNG files by class."""
        return ("parquet", "folder")

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
        check_generate_options(model, generate_options, self.model)
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
        to the pipeline (``guidance_scale``, ``num_inference_steps``,
        ``negative_prompt``, ``height``/``width`` (default: ``resolution``),
        ``batch_size``; see ``PretrainedDiffusion.generate``).
        """
        if self.is_pretrained:
            if prompt is None:
                raise InvalidOptionError(f"The pretrained pipeline {self.model!r} generates from a text prompt: pass prompt=...")
            if labels is not None:
                raise InvalidOptionError("A pretrained text-to-image pipeline takes a prompt, not labels.")
            count = 1 if num_samples is None else check_count(num_samples)
            return self._pipeline.generate(prompt, count, seed=seed, **{**self._generation_defaults, **options})
        if prompt is not None:
            raise InvalidOptionError(f"The {self.model!r} model generates by class label, not from a prompt.")
        return self.sample(num_samples, labels=labels, seed=seed, **options).images

    def generate_batch(self, prompts: Sequence[str], num_samples_per_prompt: int | Sequence[int] = 1, **options: Any):
        """Images for many prompts in batches (pretrained pipelines only): a ``GeneratedImages``.

        ``num_samples_per_prompt`` is one count for every prompt or one count per
        prompt; ``options`` as for :meth:`generate` (see ``PretrainedDiffusion.generate_batch``).
        """
        if not self.is_pretrained:
            raise InvalidOptionError(f"generate_batch takes prompts; the {self.model!r} model generates by label (use generate).")
        # prompts as given: the pipeline refuses a bare string, which list() would split into letters.
        return self._pipeline.generate_batch(prompts, num_samples_per_prompt, **{**self._generation_defaults, **options})

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

    def conditions_from_strings(self, items: Sequence[str]) -> Labels:
        """``["label=7"]`` (a command line's ``--condition label=7``) is the label ``"7"``; no items, the class mix."""
        parsed = super().conditions_from_strings(items)
        if parsed is None:
            return None
        if list(parsed) != ["label"] or isinstance(parsed["label"], Mapping):
            raise InvalidConditionError(
                f"Image models take one condition, label=CLASS (e.g. label=7: every image of that class); "
                f"got {', '.join(map(repr, items))}."
            )
        return parsed["label"]

    def write_samples(self, table: pa.Table, out: str, format: str | None = None) -> str:
        """Images as :meth:`sample_table` gives them, to the folder ``out``: Parquet (PNG bytes, labels) or PNG files."""
        fmt = format or "parquet"
        if fmt not in ("parquet", "folder"):
            raise InvalidOptionError(f"Images are written as 'parquet' or 'folder' (PNG files by class); got {fmt!r}.")
        save_dataset(image_set_from_table(table), out, format=fmt)
        return f"wrote {table.num_rows} images to {out} ({fmt})"

    def describe(self) -> dict[str, Any]:
        """Image shape, classes and training metrics (and the DP guarantee of a privately trained model)."""
        model, pre = self._require_fitted()
        layout = pre.layout
        guarantee = getattr(model, "privacy_", None)  # DP models (engine.privacy)
        return {
            **super().describe(),
            "image": {"height": layout.height, "width": layout.width, "channels": layout.channels},
            "classes": list(layout.class_names),
            **({"privacy": {k: v for k, v in guarantee.items() if k != "ledger"}} if guarantee else {}),
        }

    # ------------------------------------------------------- mixtures and augmentation
    def _real_image_set(self, data: Any) -> ImageSet:
        """Labelled real images (an :class:`ImageSet`, ``(images, labels)`` or any source ``fit`` reads) at the
        model's size, their labels recoded to the model's class order."""
        _, pre = self._require_fitted()
        if isinstance(data, pa.Table):
            image_set = image_set_from_table(data)
        elif isinstance(data, tuple) and len(data) == 2:
            image_set = pre.prepare(*data)
        else:
            image_set = pre.prepare(data)
        names = self._check_label_column(LABEL_COLUMN)
        if image_set.labels is None:
            raise InvalidDataError(f"The real images have no labels; the model's classes are {', '.join(names)}.")
        if image_set.images.shape[1:] != (pre.layout.height, pre.layout.width, pre.layout.channels):
            image_set = ImageSet(pre.prepare(image_set.images).images, image_set.labels, image_set.class_names)
        own = image_set.class_names or [str(k) for k in range(int(image_set.labels.max()) + 1)]
        codes = label_codes([own[k] for k in image_set.labels], names)
        return ImageSet(image_set.images, codes, names)

    def read_samples(self, data: Any) -> pa.Table:
        """Real labelled images (an ImageSet, ``(images, labels)`` or a source ``fit`` reads) as ``sample_table`` gives samples."""
        real = self._real_image_set(data)
        return image_table(real.images, real.labels, real.class_names)

    def from_table(self, table: pa.Table) -> ImageSet:
        """Images as ``sample`` returns them (an :class:`ImageSet`); other columns (``source``) go to ``extra``."""
        image_set = image_set_from_table(table)
        if image_set.labels is not None and not image_set.class_names:
            image_set.class_names = self.class_names or None
        others = [c for c in table.column_names if c not in ("image", LABEL_COLUMN)]
        if others:
            image_set.extra = {c: np.asarray(table.column(c).to_pylist(), dtype=object) for c in others}
        return image_set

    def class_fidelity(self, real: Any, synthetic: Any, column: str = LABEL_COLUMN, *, seed: int = 0,
                       epochs: int = 3, min_steps: int = 100) -> dict[str, float]:
        """Per class ``c``: the share of synthetic images of class ``c`` that a classifier trained on the real images calls ``c``.

        The classifier is the evaluator's small CNN (:class:`~engine.images.metrics.DomainClassifier`),
        trained on the real labelled images for ``epochs`` passes (at least ``min_steps``
        updates). 1.0 means every synthetic image of the class looks like that class to
        a judge of the real ones; a generator that ignores its labels scores about
        ``1/K`` per class. ``synthetic`` is what ``sample`` returns (or a samples table).
        """
        from engine.images.metrics import DomainClassifier

        names = self._check_label_column(column)
        real_set = self._real_image_set(real)
        syn = synthetic if isinstance(synthetic, ImageSet) else self.from_table(synthetic) if isinstance(synthetic, pa.Table) else self._real_image_set(synthetic)
        if syn.labels is None:
            raise InvalidDataError("The synthetic images have no labels: per-class fidelity needs the class each was drawn for.")
        syn_names = syn.class_names or names
        syn_codes = label_codes([syn_names[k] for k in syn.labels], names)
        batch = 128
        epochs = max(epochs, -(-min_steps // -(-len(real_set) // batch)))
        judge = DomainClassifier(epochs=epochs, batch_size=batch, seed=seed).fit(real_set.images, real_set.labels)
        images = syn.images
        if images.shape[1:] != real_set.images.shape[1:]:
            images = self._real_image_set((images, syn_codes)).images
        return per_class_share(names, syn_codes, judge.predict(images))

    # ------------------------------------------------------------- evaluate
    def evaluate(
        self, real_images: Any, real_labels: Any = None, *, holdout: Any = None, holdout_labels: Any = None,
        num_samples: int | None = None, seed: int = 0, generate_options: Mapping[str, Any] | None = None,
        **evaluator_options: Any,
    ):
        """Generate images and score them against real ones: an :class:`~engine.images.metrics.ImageReport`.

        Args:
            real_images, real_labels: the real images (any source ``read_images`` accepts). An
                :class:`ImageSet` as the second argument is instead the synthetic images to score
                (what ``sample`` returns), as in every front door's ``evaluate(real, synthetic)``.
            holdout, holdout_labels: held-out real images, for the real-vs-real floor.
            num_samples: images to generate (default: as many as are compared, ``max_images``
                or fewer when the real set is smaller); drawn in the training class mix.
            generate_options: passed to ``sample`` (e.g. ``{"sampler": "ddim", "steps": 50}``).
            evaluator_options: passed to :class:`~engine.images.metrics.ImageEvaluator`
                (``max_images``, ``inception``, ``domain``, ...).
        """
        from engine.images.metrics import ImageEvaluator

        self._require_fitted()
        given = real_labels if isinstance(real_labels, ImageSet) else None
        if given is not None:
            real_labels = None
        evaluator = ImageEvaluator(**evaluator_options).fit(real_images, real_labels, holdout=holdout, holdout_labels=holdout_labels)
        generated = given if given is not None else self.sample(
            evaluator.n_ if num_samples is None else num_samples, seed=seed, **dict(generate_options or {}))
        report = evaluator.evaluate(generated)
        guarantee = getattr(self._model, "privacy_", None)  # DP models (engine.privacy)
        if guarantee:
            report.details["dp_guarantee"] = {k: v for k, v in guarantee.items() if k != "ledger"}
            report.details.setdefault("notes", []).append(
                f"differential privacy: epsilon {guarantee['epsilon_spent']:.4g} spent of {guarantee['epsilon']:.4g}, "
                f"delta {guarantee['delta']:.3g}, noise multiplier {guarantee['noise_multiplier']:.4g}, clipping norm "
                f"{guarantee['max_grad_norm']:.4g}, {guarantee['steps']} steps ({guarantee['accountant'].upper()} accountant)"
            )
        return report

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


def _image_side(image_size: int | None, resolution: int | None) -> int | None:
    """The one side length ``image_size`` and its alias ``resolution`` give, refused when they disagree."""
    # image_size itself is checked where it is used (the preprocessor), as before resolution existed.
    if resolution is not None:
        check_count(resolution, "resolution")
    if image_size is not None and resolution is not None and image_size != resolution:
        raise InvalidOptionError(
            f"'resolution' is another name for 'image_size', and they differ: image_size={image_size!r}, "
            f"resolution={resolution!r}. Give one of them."
        )
    side = resolution if resolution is not None else image_size
    return None if side is None else int(side)


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
        from dataclasses import fields

        # The config class is the one list of hyperparameters (config_keys may lag behind it).
        hyper = [f.name for f in fields(self.modality_info().model_class(self.model_name).config_class)]
        # ImageSynthesizer's **pipeline_options only make sense for pretrained pipelines, so a keyword that is
        # neither a hyperparameter nor a front-door option is a typo: refuse it here, naming the valid ones.
        options = [
            name for name, p in inspect.signature(ImageSynthesizer.__init__).parameters.items()
            if p.kind is p.KEYWORD_ONLY and name not in ("image_size", "channels", "model_config")
        ]
        unknown = [k for k in kwargs if k not in hyper and k not in options and k != "model_config"]
        if unknown:
            key = unknown[0]
            raise InvalidOptionError(
                f"{type(self).__name__} takes the hyperparameters {', '.join(map(repr, hyper))} and the options "
                f"'image_size', 'channels', 'model_config', {', '.join(map(repr, options))}. "
                f"Got unknown parameter {key!r} (= {kwargs[key]!r}) instead.{did_you_mean(key, hyper + options)}"
            )
        config = {k: kwargs.pop(k) for k in list(kwargs) if k in hyper}
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


class StableDiffusionSynthesizer(ImageSynthesizer):
    """A pretrained text-to-image pipeline (Stable Diffusion and the like) behind the image front door.

    ``StableDiffusionSynthesizer(model_id="stable-diffusion-v1-5").generate_batch(prompts=[...], num_samples_per_prompt=100)``

    The same object as ``ImageSynthesizer(model=model_id, ...)``, under the name
    users of pretrained pipelines look for: :meth:`generate` takes ``prompt=``,
    :meth:`generate_batch` takes ``prompts=``; it is not trained.

    Args:
        model_id: a short name (``"stable-diffusion-v1-5"``, ``"stable-diffusion-2-1"``,
            ``"sdxl"``, ``"sd-turbo"``...; see ``engine.images.pretrained.source.KNOWN_PIPELINES``),
            a Hugging Face hub id, or a local pipeline folder (``hf download <id> --local-dir <folder>``).
            Hub ids load from the local Hugging Face cache when they are there, without network.
        resolution: side of the square images generated (``height`` = ``width``,
            a multiple of 8); None keeps the pipeline's native size.
        device, dtype, local_files_only, safety_checker, revision: as for
            ``engine.images.pretrained.pipeline.PretrainedDiffusion``.
    """

    def __init__(
        self,
        model_id: str | os.PathLike[str],
        *,
        resolution: int | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        local_files_only: bool | None = None,
        safety_checker: bool = True,
        revision: str | None = None,
    ):
        from engine.images.pretrained.source import KNOWN_PIPELINES, is_pipeline_name

        trained = self.modality_info().models
        if isinstance(model_id, str) and model_id in trained:
            raise InvalidOptionError(
                f"StableDiffusionSynthesizer wraps a pretrained pipeline; {model_id!r} is a model trained here: use "
                f"ImageSynthesizer(model={model_id!r}) (or {', '.join(c.__name__ for c in (DCGAN, WGANGP, DDPM))})."
            )
        if not is_pipeline_name(model_id):
            raise InvalidOptionError(
                f"The 'model_id' parameter of StableDiffusionSynthesizer must be a pipeline short name "
                f"({', '.join(map(repr, KNOWN_PIPELINES))}), a hub id such as 'org/name' or a local pipeline folder. "
                f"Got {model_id!r} instead."
            )
        super().__init__(
            model_id, resolution=resolution, device=device, dtype=dtype, local_files_only=local_files_only,
            safety_checker=safety_checker, revision=revision,
        )

    @property
    def model_id(self) -> str:
        """The pipeline as it was named (short name, hub id or folder)."""
        return self.model

    @property
    def pipeline(self):
        """The wrapped :class:`~engine.images.pretrained.pipeline.PretrainedDiffusion` (its ``source`` says where it came from)."""
        return self._pipeline
