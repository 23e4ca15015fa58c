"""The audio front door: ``AudioSynthesizer``.

``fit`` reads recordings (a folder of WAV/FLAC, a CSV manifest, Parquet, a
DataFrame or an array), brings them to one rate, length and channel, and
trains the model with the engine's one Ray Train loop; ``sample`` returns
exactly the clips asked for, of the requested classes, as a DataFrame with an
``audio`` column of float32 arrays in [-1, 1], a ``label`` column and the rate
in ``frame.attrs["sample_rate"]``; ``save_dataset`` writes them as WAV files
per label plus a Parquet manifest.

Example::

    synth = AudioSynthesizer(model="wavegan", sample_rate=8000, duration=1.0)
    synth.fit("recordings/", epochs=50)          # one sub-folder per class
    clips = synth.sample(num_samples=200, conditions={"label": "7"}, seed=3)
    synth.save_dataset(clips, "out/")
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from engine.audio.io import AudioSet, as_audio_set, audio_set_from_table, audio_table, read_audio, save_dataset
from engine.audio.transforms import AudioPreprocessor
from engine.core.contract import TorchSynthModel
from engine.core.errors import InvalidConditionError, InvalidDataError, InvalidOptionError
from engine.core.labels import LABEL_COLUMN, ClassLabelled, label_codes, per_class_share
from engine.core.seeds import seed_streams
from engine.core.synthesizer import FrontDoorOption, Synthesizer, check_count, check_generate_options, check_seed, reading
from engine.store.artifact import Artifact

DEFAULT_EPOCHS = {"wavegan": 50, "diffwave": 100, "specdiff": 100}
DEFAULT_BATCH_SIZE = {"wavegan": 64, "diffwave": 32, "specdiff": 32}
Labels = Any  # None, one label, a sequence of labels (one per clip), or {label: count}


class AudioSynthesizer(ClassLabelled, Synthesizer):
    """Learn a set of recordings and generate new clips like them, optionally of requested classes.

    Args:
        model: ``"wavegan"`` (a GAN: fast to sample), ``"diffwave"`` (a small diffusion model of
            waveforms: 50 network passes per clip, slower to sample, steadier to train) or
            ``"specdiff"`` (a diffusion model of spectrograms, inverted by Griffin-Lim, as
            SpecGAN's spectrograms are).
        sample_rate: the rate clips are read, trained and generated at (Hz).
        duration: seconds per clip (recordings are cropped or padded with silence).
        labels_from: where labels come from for files: ``"folder"`` (class
            sub-folders, the default), ``"filename_prefix"`` (``7_george_3.wav``
            is a 7), ``"none"``; for a table, the name of its label column.
        normalize: ``"global"`` (one gain brings the loudest training sample to
            0.95) or ``"none"``.
        model_config: hyperparameters of the model (see ``WaveGANConfig``, ``DiffWaveConfig``, ``SpecDiffusionConfig``).
        num_workers, use_gpu, cpus_per_worker: how Ray Train scales training.
        checkpoint_every, storage_path, run_name, max_failures, show_progress:
            as for the other front doors (see ``TrainOptions``).
    """

    modality = "audio"
    sample_unit = "clip"
    label_error = InvalidConditionError
    default_epochs = DEFAULT_EPOCHS
    default_batch_size = DEFAULT_BATCH_SIZE

    def __init__(
        self,
        model: str = "wavegan",
        *,
        sample_rate: int = 16000,
        duration: float = 1.0,
        labels_from: str | None = None,
        normalize: str = "global",
        model_config: Mapping[str, Any] | None = None,
        num_workers: int = 1,
        use_gpu: bool | None = None,
        cpus_per_worker: float | None = None,
        pretrained: str | None = None,
        checkpoint_every: int = 10,
        storage_path: str | None = None,
        run_name: str | None = None,
        max_failures: int = 0,
        show_progress: bool = True,
    ):
        super().__init__(model, model_config=model_config, num_workers=num_workers, use_gpu=use_gpu,
                         cpus_per_worker=cpus_per_worker, pretrained=pretrained)
        # Checked now, before any file is read.
        AudioPreprocessor(sample_rate, duration, labels_from=labels_from, normalize=normalize)
        self.sample_rate, self.duration, self.labels_from, self.normalize = int(sample_rate), float(duration), labels_from, normalize
        self.checkpoint_every, self.storage_path, self.run_name = checkpoint_every, storage_path, run_name
        self.max_failures, self.show_progress = max_failures, show_progress
        self._model: TorchSynthModel | None = None
        self._preprocessor: AudioPreprocessor | None = None
        self.class_frequencies_: np.ndarray | None = None

    @classmethod
    def cli_options(cls) -> tuple[FrontDoorOption, ...]:
        """The rate, duration and label rule recordings are read with."""
        return (
            FrontDoorOption("sample_rate", "audio: sample rate in Hz (default 16000)", stage="init", type=int),
            FrontDoorOption("duration", "audio: seconds per clip (default 1.0)", stage="init", type=float),
            FrontDoorOption("labels_from", "audio: 'folder', 'filename_prefix', 'none' or a label column", stage="init", type=str),
        )

    @classmethod
    def file_formats(cls) -> tuple[str, ...]:
        """What :meth:`write_samples` writes to a folder: WAV files by label (plus a manifest), or Parquet of WAV bytes."""
        return ("folder", "parquet")

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any, labels: Any = None, *, epochs: int | None = None, batch_size: int | None = None,
            seed: int = 0, time_budget: float | str | None = None, mixed_precision: str = "no") -> AudioSynthesizer:
        """Train on recordings (see :func:`engine.audio.io.read_audio` for the sources); labels make the model conditional.

        ``time_budget`` (seconds, or ``"90s"``, ``"30m"``) ends training after that long on the
        workers (the training loop's budget: checked after every step); without ``epochs`` the
        budget alone ends the run. ``mixed_precision="bf16"`` trains under bfloat16 autocast, on
        GPUs and on CPUs that multiply bfloat16 natively (see ``TrainOptions``).
        """
        pre = AudioPreprocessor(self.sample_rate, self.duration, labels_from=self.labels_from, normalize=self.normalize)
        audio_set = pre.prepare(data, labels)
        pre.fit(audio_set)
        model = self._train_torch(
            layout=pre.layout, data=pre.transform(audio_set), epochs=epochs, batch_size=batch_size, seed=seed,
            checkpoint_every=self.checkpoint_every, storage_path=self.storage_path, run_name=self.run_name,
            max_failures=self.max_failures, show_progress=self.show_progress, time_budget=time_budget,
            mixed_precision=mixed_precision,
        )
        self._model, self._preprocessor = model, pre
        if audio_set.labels is not None:
            counts = np.bincount(audio_set.labels, minlength=pre.layout.num_classes)
            self.class_frequencies_ = counts / counts.sum()
        return self

    # --------------------------------------------------------------- sample
    def _require_fitted(self) -> tuple[TorchSynthModel, AudioPreprocessor]:
        if self._model is None or self._preprocessor is None:
            raise self._not_fitted()
        return self._model, self._preprocessor

    def generate(self, num_samples: int | None = None, *, conditions: Any = None, seed: int | None = None,
                 stream: int = 0, **generate_options: Any) -> AudioSet:
        """Exactly ``num_samples`` clips as an :class:`AudioSet` (see :meth:`sample` for the arguments)."""
        model, pre = self._require_fitted()
        check_generate_options(model, generate_options, self.model)
        gen, rng = seed_streams(check_seed(seed), stream)
        n, codes = self._label_codes(num_samples, _label_condition(conditions), rng)
        clips = pre.inverse_transform(model.generate(n, codes, gen, **generate_options))
        names = list(pre.layout.class_names) or None
        return AudioSet(clips, pre.layout.sample_rate, codes, names)

    def sample(self, num_samples: int | None = None, *, conditions: Any = None, seed: int | None = None,
               stream: int = 0, **generate_options: Any) -> pd.DataFrame:
        """Exactly ``num_samples`` clips: a DataFrame of ``audio`` (float32 arrays in [-1, 1]) and ``label``.

        Args:
            conditions: ``None`` (the training class mix), ``{"label": "7"}`` or
                ``"7"`` (every clip of that class), one label per clip, or
                ``{"label": {"7": 10, "3": 5}}`` / ``{"7": 10, "3": 5}``
                (counts per class; then ``num_samples`` may be left out).
            seed: the same seed gives the same clips; ``None`` draws a fresh one.
            stream: the sharded sampler's shard index, for independent shards.

        ``frame.attrs["sample_rate"]`` holds the rate.
        """
        result = self.generate(num_samples, conditions=conditions, seed=seed, stream=stream, **generate_options)
        frame = pd.DataFrame({"audio": list(result.clips)})
        if result.labels is not None:
            frame["label"] = result.label_names()
        frame.attrs["sample_rate"] = result.sample_rate
        return frame

    def save_dataset(self, clips: Any, out: str, *, format: str = "folder", overwrite: bool = False) -> str:
        """Write clips (as :meth:`sample` returns them) as WAV files per label plus ``manifest.parquet``, or Parquet."""
        return str(save_dataset(as_audio_set(clips, self.sample_rate), out, format=format, overwrite=overwrite))

    def sample_table(self, num_rows: int, *, conditions: Labels = None, seed: int, stream: int = 0, row_offset: int = 0) -> pa.Table:
        """One shard or chunk: WAV bytes (an ``audio`` ``{bytes, path}`` column) and labels, as an Arrow table."""
        del row_offset  # clips carry no identifiers to keep unique across shards
        result = self.generate(num_rows, conditions=_shard_labels(_label_condition(conditions)), seed=seed, stream=stream)
        return audio_table(result.clips, result.labels, result.class_names, result.sample_rate)

    def parse_conditions(self, conditions: Labels) -> None:
        """Validate a request's conditions (one label for every clip, or None) before sampling starts."""
        self._require_fitted()
        conditions = _shard_labels(_label_condition(conditions))
        if conditions is not None:
            self._label_codes(1, conditions, np.random.default_rng(0))

    def coerce_conditions(self, conditions: Labels) -> Labels:
        """A request's condition: ``{"label": "7"}`` or one label, or None for the training class mix."""
        return _label_condition(conditions)

    def conditions_from_strings(self, items: Sequence[str]) -> Labels:
        """``["label=7"]`` (``--condition label=7``) is the label ``"7"``; no items, the class mix."""
        parsed = super().conditions_from_strings(items)
        if parsed is None:
            return None
        if list(parsed) != ["label"] or isinstance(parsed["label"], Mapping):
            raise InvalidConditionError(
                f"Audio models take one condition, label=CLASS (e.g. label=7); got {', '.join(map(repr, items))}."
            )
        return str(parsed["label"])

    def write_samples(self, table: pa.Table, out: str, format: str | None = None) -> str:
        """Clips as :meth:`sample_table` gives them, to the folder ``out``: WAV files by label (default) or Parquet."""
        fmt = format or "folder"
        if fmt not in self.file_formats():
            raise InvalidOptionError(f"Audio is written as 'folder' (WAV files by label) or 'parquet'; got {fmt!r}.")
        save_dataset(audio_set_from_table(table), out, format=fmt)
        return f"wrote {table.num_rows} clips to {out} ({fmt})"

    def describe(self) -> dict[str, Any]:
        """Rate, length, classes and training metrics."""
        layout = self._require_fitted()[1].layout
        return {**super().describe(),
                "audio": {"sample_rate": layout.sample_rate, "num_samples": layout.num_samples, "duration": layout.duration},
                "classes": list(layout.class_names)}

    def to_device(self, device: str | torch.device) -> str:
        model, _ = self._require_fitted()
        model.to(torch.device(device))
        return str(model.device)

    # ------------------------------------------------------- mixtures and augmentation
    def _real_audio_set(self, data: Any) -> AudioSet:
        """Labelled real clips (an :class:`AudioSet`, what ``sample`` returns, or any source ``fit`` reads) at the
        model's rate and length, their labels recoded to the model's class order."""
        _, pre = self._require_fitted()
        names = self._check_label_column(LABEL_COLUMN)
        if isinstance(data, (AudioSet, pa.Table)) or (isinstance(data, pd.DataFrame) and "sample_rate" in data.attrs):
            audio_set = as_audio_set(data, self.sample_rate)  # clips as sample() returns them
        else:
            audio_set = pre.prepare(data)
        if audio_set.labels is None:
            raise InvalidDataError(f"The real clips have no labels; the model's classes are {', '.join(names)}.")
        if audio_set.sample_rate != pre.layout.sample_rate or audio_set.clips.shape[1:] != (pre.layout.num_samples,):
            audio_set = read_audio(audio_set.clips, audio_set.label_names(), sample_rate=pre.layout.sample_rate,
                                   num_samples=pre.layout.num_samples, source_rate=audio_set.sample_rate)
        return AudioSet(audio_set.clips, audio_set.sample_rate, label_codes(audio_set.label_names(), names), names)

    def read_samples(self, data: Any) -> pa.Table:
        """Real labelled clips (a source ``fit`` reads, an AudioSet or a ``sample`` frame) as ``sample_table`` gives samples."""
        real = self._real_audio_set(data)
        return audio_table(real.clips, real.labels, real.class_names, real.sample_rate)

    def from_table(self, table: pa.Table) -> pd.DataFrame:
        """Clips as ``sample`` returns them (``audio``, ``label``, rate in ``attrs``), with any other column (``source``)."""
        result = audio_set_from_table(table)
        frame = pd.DataFrame({"audio": list(result.clips)})
        if result.labels is not None:
            names = result.class_names or self.class_names
            frame[LABEL_COLUMN] = [names[k] for k in result.labels]
        for column in table.column_names:
            if column not in ("audio", LABEL_COLUMN):
                frame[column] = table.column(column).to_pylist()
        frame.attrs["sample_rate"] = result.sample_rate or self.sample_rate
        return frame

    def class_fidelity(self, real: Any, synthetic: Any, column: str = LABEL_COLUMN, *, seed: int = 0,
                       epochs: int = 15, min_steps: int = 150) -> dict[str, float]:
        """Per class ``c``: the share of synthetic clips of class ``c`` that a classifier trained on the real clips calls ``c``.

        The classifier is the evaluator's log-mel CNN (:class:`~engine.audio.metrics.judge.AudioJudge`),
        trained on the real labelled clips. 1.0 means every synthetic clip of the class
        sounds like that class to a judge of the real ones; a generator that ignores its
        labels scores about ``1/K`` per class. ``synthetic`` is what ``sample`` returns.
        """
        from engine.audio.metrics.judge import AudioJudge

        names = self._check_label_column(column)
        real_set = self._real_audio_set(real)
        syn = self._real_audio_set(synthetic)
        judge = AudioJudge(epochs=epochs, min_steps=min_steps, seed=seed).fit(real_set.clips, real_set.labels, real_set.sample_rate)
        _, probs = judge.run(syn.clips)
        return per_class_share(names, syn.labels, probs.argmax(axis=1))

    # ------------------------------------------------------------- evaluate
    def evaluate(self, real_data: Any, synthetic_data: Any = None, *, real_labels: Any = None, holdout: Any = None,
                 num_samples: int | None = None, seed: int = 0, **evaluator_options: Any):
        """Score clips against real recordings: an :class:`~engine.audio.metrics.AudioReport`.

        ``synthetic_data`` (clips as :meth:`sample` returns them) defaults to
        ``num_samples`` clips generated here (default: as many as the real set)
        in the training class mix. Real data and ``holdout`` are read like training data.
        """
        from engine.audio.metrics import evaluate_audio

        _, pre = self._require_fitted()
        real = pre.prepare(real_data, real_labels)
        held = pre.prepare(holdout) if holdout is not None else None
        synthetic = synthetic_data if synthetic_data is not None else self.generate(num_samples or len(real), seed=seed)
        return evaluate_audio(real, as_audio_set(synthetic, self.sample_rate), holdout=held, seed=seed, **evaluator_options)

    # ------------------------------------------------------------ save/load
    def _artifact(self) -> Artifact:
        model, pre = self._require_fitted()
        return Artifact(
            model=self.model, config={}, schema=pre.layout.to_dict(),
            preprocessor={**pre.to_dict(),
                          "class_frequencies": None if self.class_frequencies_ is None else self.class_frequencies_.tolist()},
            model_state=model.extra_state(), tensors=model.state_tensors(),
        )

    @classmethod
    def _from_artifact(cls, art: Artifact) -> AudioSynthesizer:
        with reading("preprocessor.json"):
            pre = AudioPreprocessor.from_dict(art.preprocessor)
            freqs = art.preprocessor.get("class_frequencies")
        with reading("config.json"):
            synth = cls(art.model, sample_rate=pre.sample_rate, duration=pre.duration, labels_from=pre.labels_from,
                        normalize=pre.normalize, model_config=art.config.get("model_config", {}), **art.config.get("scaling", {}))
        with reading("model_state.json and weights.safetensors"):
            model = synth.model_class()(synth._config_object(), pre.layout)
            model.load_state_tensors(art.tensors)
            model.load_extra_state(art.model_state)
        synth._model, synth._preprocessor = model, pre
        synth.class_frequencies_ = None if freqs is None else np.asarray(freqs, dtype=np.float64)
        return synth


def _label_condition(conditions: Labels) -> Labels:
    """The label(s) a condition asks for: ``{"label": x}`` is ``x``; anything else is itself."""
    if isinstance(conditions, Mapping) and list(conditions) == ["label"]:
        return conditions["label"]
    return conditions


def _shard_labels(conditions: Labels) -> Labels:
    """A shard's or chunk's condition: one label for all of it, or None for the class mix."""
    if conditions is None or (isinstance(conditions, (str, int, np.integer)) and not isinstance(conditions, bool)):
        return conditions
    raise InvalidConditionError(
        f"Sharded or served audio sampling takes one label for every clip (e.g. label=7) or none for the training "
        f"class mix; got {conditions!r}. For counts per label, sample each label on its own."
    )
