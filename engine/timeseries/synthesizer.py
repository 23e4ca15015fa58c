"""The time-series front door: ``TimeSeriesSynthesizer``.

Example::

    synth = TimeSeriesSynthesizer(model="timegan", sequence_length=24)
    synthetic = synth.generate(real_data=readings, num_sequences=500, anomaly_rate=0.05)   # fit + sample
    synth = TimeSeriesSynthesizer().fit(df, entity_column="device_id", time_column="timestamp",
                                        static_columns=["site"], epochs=100)
    north = synth.sample(100, conditions={"site": "north"}, anomaly_rate=0.05, seed=7)
    report = synth.evaluate(df, north)                  # a TimeSeriesReport; report.save_html("r.html")

Output follows the input: a long-format DataFrame for a table (fresh ids in the
entity column of a panel; a ``sequence_id`` column for windows cut from one long
series), ``(n, T, channels)`` floats for an array (NaN on the padding of shorter
sequences; the anomaly labels of the last call in :attr:`last_anomalies_`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from engine.core.contract import TorchSynthModel
from engine.core.errors import InvalidConditionError, InvalidDataError, InvalidOptionError
from engine.core.seeds import seed_streams
from engine.core.synthesizer import FrontDoorOption, Synthesizer, check_count, check_generate_options, check_seed, reading
from engine.store.artifact import Artifact
from engine.timeseries.anomalies import AnomalyConfig, check_rate, inject_anomalies
from engine.timeseries.io import read_input
from engine.timeseries.transforms import STEP, WINDOW_ID, SequenceEncoder, SequenceLayout

DEFAULT_EPOCHS = {"diffusion_ts": 300, "timegan": 50}
DEFAULT_BATCH_SIZE = {"diffusion_ts": 64, "timegan": 128}


class TimeSeriesSynthesizer(Synthesizer):
    """Learn sequences (panels of entities in time, windows of one series, wide arrays) and generate new ones.

    Args:
        model: ``"diffusion_ts"`` (a transformer diffusion model, the default) or ``"timegan"``.
        sequence_length: steps per sequence (see :class:`~engine.timeseries.transforms.SequenceEncoder`;
            one long series: default 24; a panel: None keeps each entity's length).
        stride: steps between windows (one series: default 1; a panel's long entities: no overlap).
        entity_column, time_column, static_columns: the table's roles (may also be given to ``fit``).
        categorical_columns, numeric_columns: temporal columns forced to a kind.
        anomaly_rate: default share of sampled sequences given one labelled anomaly.
        anomalies: anomaly types and magnitudes (see :class:`~engine.timeseries.anomalies.AnomalyConfig`).
        model_config, num_workers, use_gpu, cpus_per_worker, pretrained: as for every front door.
        checkpoint_every, storage_path, run_name, max_failures, show_progress: the training loop's options.
    """

    modality = "timeseries"
    default_epochs = DEFAULT_EPOCHS
    default_batch_size = DEFAULT_BATCH_SIZE

    def __init__(
        self,
        model: str = "diffusion_ts",
        *,
        sequence_length: int | None = None,
        stride: int | None = None,
        entity_column: str | None = None,
        time_column: str | None = None,
        static_columns: Sequence[str] | None = None,
        categorical_columns: Sequence[str] | None = None,
        numeric_columns: Sequence[str] | None = None,
        anomaly_rate: float = 0.0,
        anomalies: Mapping[str, Any] | Sequence[str] | None = None,
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
        for name, value in (("sequence_length", sequence_length), ("stride", stride)):
            if value is not None:
                check_count(value, name)
        self.sequence_length, self.stride = sequence_length, stride
        self.entity_column, self.time_column = entity_column, time_column
        self.static_columns = list(static_columns or [])
        self.categorical_columns, self.numeric_columns = categorical_columns, numeric_columns
        self.anomaly_rate = check_rate(anomaly_rate)
        self.anomaly_config = AnomalyConfig.from_options(anomalies)
        self.checkpoint_every, self.storage_path, self.run_name = checkpoint_every, storage_path, run_name
        self.max_failures, self.show_progress = max_failures, show_progress
        self._model: TorchSynthModel | None = None
        self._encoder: SequenceEncoder | None = None
        self.last_anomalies_: dict[str, np.ndarray] | None = None

    @classmethod
    def cli_options(cls) -> tuple[FrontDoorOption, ...]:
        """The table's roles, the sequence length and the anomaly rate, for ``synth fit/sample`` and job configs."""
        return (
            FrontDoorOption("entity_column", "the column naming each sequence (panel data)", stage="fit"),
            FrontDoorOption("time_column", "the time stamps column (dates or numbers)", stage="fit"),
            FrontDoorOption("static_columns", "per-entity attribute columns (comma-separated)", stage="fit", many=True),
            FrontDoorOption("sequence_length", "steps per sequence (one long series: window length)", stage="init", type=int),
            FrontDoorOption("stride", "steps between windows cut from a long series", stage="init", type=int),
            FrontDoorOption("anomaly_rate", "share of sampled sequences with one labelled anomaly", stage="sample", type=float),
        )

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: Any,
        *,
        entity_column: str | None = None,
        time_column: str | None = None,
        static_columns: Sequence[str] | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        **train_options: Any,
    ) -> TimeSeriesSynthesizer:
        """Learn ``data``: a long-format table (DataFrame, CSV or Parquet path), an ``(n, T, C)`` array or one series.

        ``entity_column``, ``time_column`` and ``static_columns`` override the constructor's.
        """
        if entity_column is not None:
            self.entity_column = entity_column
        if time_column is not None:
            self.time_column = time_column
        if static_columns is not None:
            self.static_columns = [static_columns] if isinstance(static_columns, str) else list(static_columns)
        encoder = SequenceEncoder(
            entity_column=self.entity_column, time_column=self.time_column, static_columns=self.static_columns,
            sequence_length=self.sequence_length, stride=self.stride, categorical_columns=self.categorical_columns,
            numeric_columns=self.numeric_columns,
        )
        frame = read_input(data)
        encoder.fit(frame)
        encoded = encoder.transform(frame)
        options = {"checkpoint_every": self.checkpoint_every, "storage_path": self.storage_path, "run_name": self.run_name,
                   "max_failures": self.max_failures, "show_progress": self.show_progress, **train_options}
        n = len(encoded.lengths)
        size = batch_size if batch_size is not None else self.default_batch_size.get(self.model, 64)
        self._model = self._train_torch(layout=encoder.layout, data=encoded.training_data(), epochs=epochs,
                                        batch_size=min(size, n), seed=seed, **options)
        self._encoder = encoder
        return self

    train = fit

    # ------------------------------------------------------------------ sample
    def _require_fitted(self) -> tuple[TorchSynthModel, SequenceEncoder]:
        if self._model is None or self._encoder is None:
            raise self._not_fitted()
        return self._model, self._encoder

    def _draw(self, n: int, conditions: Any, anomaly_rate: float | None, seed: int | None, stream: int,
              generate_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        model, enc = self._require_fitted()
        generate_options = generate_options or {}
        check_generate_options(model, generate_options, self.model)
        n = check_count(n, "num_sequences")
        rate = check_rate(self.anomaly_rate if anomaly_rate is None else anomaly_rate)
        gen, rng = seed_streams(check_seed(seed), stream)
        checked = enc.check_conditions(conditions)
        static_rows, lengths, starts = enc.draw_profiles(n, checked, rng)
        mask = (np.arange(enc.steps_)[None, :] < lengths[:, None]).astype(np.float32)
        x = model.generate(n, {"static": enc.encode_static(static_rows), "mask": mask}, gen, **generate_options)
        decoded = enc.decode_arrays(x, lengths, starts)
        labels = None
        if rate > 0 and enc.num_numeric:
            decoded["numeric"], labels = inject_anomalies(decoded["numeric"], lengths, enc.scale_, rate, rng, self.anomaly_config)
        return {"decoded": decoded, "lengths": lengths, "static": static_rows, "labels": labels, "rate": rate}

    def sample(
        self, num_sequences: int, *, conditions: Mapping[str, Any] | None = None, anomaly_rate: float | None = None,
        seed: int | None = None, stream: int = 0, row_offset: int = 0, **generate_options: Any,
    ) -> pd.DataFrame | np.ndarray:
        """Exactly ``num_sequences`` new sequences, in the format of the training data.

        Args:
            conditions: ``{static column: value}`` every sequence has (its length and start are
                drawn from real sequences with that value).
            anomaly_rate: share of sequences given one labelled anomaly (default: the constructor's);
                tables get ``is_anomaly`` and ``anomaly_type`` columns, arrays leave the labels in
                :attr:`last_anomalies_`.
            seed: the same seed gives the same sequences; None draws a fresh one.
            stream, row_offset: the sharded sampler's shard index and the first id of this shard.
            generate_options: sampling settings of the model for this call (``diffusion_ts``:
                ``sampling_steps``, ``sampling_eta``); others are refused, naming what it takes.
        """
        _, enc = self._require_fitted()
        drawn = self._draw(num_sequences, conditions, anomaly_rate, seed, stream, generate_options)
        self.last_anomalies_ = drawn["labels"]
        if enc.kind_ == "array":
            return enc.to_array(drawn["decoded"], drawn["lengths"])
        return enc.to_frame(drawn["decoded"], drawn["lengths"], drawn["static"], row_offset=row_offset,
                            anomalies=self._labels(drawn, len(drawn["lengths"])))

    def _labels(self, drawn: Mapping[str, Any], n: int) -> dict[str, np.ndarray] | None:
        if drawn["rate"] <= 0:
            return None
        if drawn["labels"] is None:  # no numeric channel to disturb: every step normal
            steps = self._require_fitted()[1].steps_
            return {"is_anomaly": np.zeros((n, steps), dtype=bool), "anomaly_type": np.full((n, steps), "", dtype=object)}
        return drawn["labels"]

    def generate(
        self, real_data: Any = None, num_sequences: int | None = None, *, anomaly_rate: float | None = None,
        conditions: Mapping[str, Any] | None = None, seed: int | None = None, **fit_options: Any,
    ) -> pd.DataFrame | np.ndarray:
        """Fit on ``real_data`` (when given) and sample ``num_sequences`` (default: as many as the real ones)."""
        if real_data is not None:
            self.fit(real_data, **fit_options)
        elif fit_options:
            raise InvalidOptionError(f"fit options ({', '.join(sorted(fit_options))}) need real_data to fit on.")
        if num_sequences is None:
            num_sequences = len(self._require_fitted()[1].profiles_["length"])
        return self.sample(num_sequences, conditions=conditions, anomaly_rate=anomaly_rate, seed=seed)

    # ------------------------------------------------------------------ interfaces
    def sample_table(self, num_rows: int, *, conditions: Any = None, seed: int, stream: int = 0, row_offset: int = 0) -> pa.Table:
        """``num_rows`` sequences in long format (one row per step); ids start at ``row_offset``."""
        _, enc = self._require_fitted()
        drawn = self._draw(num_rows, conditions, None, seed, stream)
        if enc.kind_ == "array":
            # Arrays leave as long format: sequence_id, step, c0, c1, ...
            values = enc.to_array(drawn["decoded"], drawn["lengths"])
            n, steps, c = values.shape
            valid = np.arange(steps)[None, :] < drawn["lengths"][:, None]
            frame = pd.DataFrame({WINDOW_ID: np.repeat(np.arange(row_offset, row_offset + n), steps).reshape(n, steps)[valid],
                                  STEP: np.tile(np.arange(steps), n).reshape(n, steps)[valid],
                                  **{col: values[:, :, k][valid] for k, col in enumerate(enc.numeric_)}})
            labels = self._labels(drawn, n)
            if labels is not None:
                frame["is_anomaly"], frame["anomaly_type"] = labels["is_anomaly"][valid], labels["anomaly_type"][valid]
        else:
            frame = enc.to_frame(drawn["decoded"], drawn["lengths"], drawn["static"], row_offset=row_offset,
                                 anomalies=self._labels(drawn, len(drawn["lengths"])))
        return pa.Table.from_pandas(frame, preserve_index=False)

    def parse_conditions(self, conditions: Any) -> dict[str, Any]:
        """``{static column: value}`` checked against the learned static attributes (None: none)."""
        return self._require_fitted()[1].check_conditions(conditions)

    def conditions_from_strings(self, items: Sequence[str]) -> dict[str, Any] | None:
        """``["site=north"]`` -> ``{"site": "north"}``; ranges are refused (a static value is one value)."""
        parsed = super().conditions_from_strings(items)
        if parsed and any(isinstance(v, Mapping) for v in parsed.values()):
            raise InvalidConditionError(f"Time-series conditions are static COLUMN=VALUE pairs; got {', '.join(items)}.")
        return parsed

    def to_device(self, device: str | torch.device) -> str:
        model, _ = self._require_fitted()
        model.to(torch.device(device))
        return str(model.device)

    def describe(self) -> dict[str, Any]:
        """Sequence shape, columns and roles, beside the training record."""
        _, enc = self._require_fitted()
        return {
            **super().describe(),
            "sequence": {
                "input": enc.kind_, "steps": enc.steps_, "numeric": enc.numeric_, "categorical": enc.categorical_,
                "entity_column": enc.entity_column, "time_column": enc.time_column, "static_columns": enc.static_columns,
                "frequency": enc.freq_, "learned_gaps": enc.gap_channel,
            },
        }

    # ------------------------------------------------------------------ mixtures (rebalance, augment)
    def _id_column(self) -> str:
        enc = self._require_fitted()[1]
        return enc.entity_column if enc.kind_ == "panel" else WINDOW_ID

    def condition_values(self, column: str) -> list[Any]:
        """The values of a categorical static column: what ``rebalance`` draws sequences of."""
        _, enc = self._require_fitted()
        if column not in enc.static_columns:
            raise InvalidOptionError(
                f"Cannot rebalance on {column!r}: sequences are drawn by static attribute, and the static columns are "
                f"{enc.static_columns or 'none (fit with static_columns=[...])'}."
            )
        if column not in enc.static_categories_:
            raise InvalidOptionError(
                f"The static column {column!r} is numeric: classes to rebalance are a categorical static column's "
                f"(or give ratios={{value: share}} explicitly)."
            )
        return [v for v in enc.static_categories_[column] if v is not None]

    def read_samples(self, data: Any) -> pa.Table:
        """Real data in the long format :meth:`sample_table` gives: one entity's (or window's) steps together, in time order.

        A panel gives its entities whole; one long series gives the windows the model learned
        from (numbered in ``sequence_id``); an array gives ``sequence_id``, ``step`` and its channels.
        """
        _, enc = self._require_fitted()
        frame = read_input(data)
        kind, table, sequences = enc._frame(frame)
        if kind != enc.kind_:
            raise InvalidDataError(f"This model was fitted on {enc.kind_} input; the data to augment is {kind} input.")
        if kind == "panel":
            groups = table.groupby(enc.entity_column, sort=False, dropna=False).indices
            rows = np.concatenate([np.asarray(r) for r in groups.values()])
            out = table.iloc[rows].reset_index(drop=True)
        elif kind == "windows":
            rows = np.concatenate(sequences)
            out = table.iloc[rows].reset_index(drop=True)
            out.insert(0, WINDOW_ID, np.repeat(np.arange(len(sequences)), [len(r) for r in sequences]).astype(np.int64))
        else:
            lengths = [len(r) for r in sequences]
            out = table.iloc[np.concatenate(sequences)].reset_index(drop=True)
            out.insert(0, STEP, np.concatenate([np.arange(k) for k in lengths]).astype(np.int64))
            out.insert(0, WINDOW_ID, np.repeat(np.arange(len(sequences)), lengths).astype(np.int64))
        return pa.Table.from_pandas(out, preserve_index=False)

    def sample_bounds(self, table: pa.Table) -> np.ndarray:
        """Where each sequence of a long-format ``table`` starts (its rows are consecutive), and the end."""
        column = self._id_column()
        if column not in table.column_names:
            raise InvalidOptionError(f"The sequences have no column {column!r} naming each sequence; they have {table.column_names}.")
        codes = pd.factorize(table.column(column).to_pandas(), use_na_sentinel=False)[0]
        starts = np.flatnonzero(np.diff(codes) != 0) + 1
        return np.concatenate([[0], starts, [len(codes)]]).astype(np.int64) if len(codes) else np.zeros(1, dtype=np.int64)

    def from_table(self, table: pa.Table) -> pd.DataFrame:
        """Long-format sequences as a DataFrame; beside real ones (a ``source`` column), synthetic ids made fresh."""
        from engine.core.mixtures import SOURCE_COLUMN

        frame = table.to_pandas()
        column = self._id_column()
        if SOURCE_COLUMN in frame.columns and column in frame.columns:
            synthetic = (frame[SOURCE_COLUMN] == "synthetic").to_numpy()
            real_ids = set(frame.loc[~synthetic, column].tolist())
            ids = frame.loc[synthetic, column]
            if real_ids & set(ids.tolist()):
                # Synthetic ids are numbered from 0 like the real ones may be: move them past every real id.
                if pd.api.types.is_integer_dtype(frame[column]):
                    frame.loc[synthetic, column] = ids + (max(real_ids) + 1 - ids.min())
                else:
                    codes = pd.factorize(ids)[0]
                    fresh, k = [], 0
                    while len(fresh) < codes.max() + 1:
                        if f"synthetic-{k}" not in real_ids:
                            fresh.append(f"synthetic-{k}")
                        k += 1
                    frame.loc[synthetic, column] = np.asarray(fresh, dtype=object)[codes]
        return frame

    def class_fidelity(self, real: Any, synthetic: Any, column: str) -> dict[str, float]:
        """Per value of the static ``column``: the fidelity of its synthetic sequences against its real ones.

        The score is in [0, 1] (1 is best): the mean of ``1 - KS`` (the marginal KS statistic
        per numeric channel, averaged) and ``1 - ACF distance / 2`` (autocorrelation, lags 1..10).
        A class with fewer than 2 real or 2 synthetic sequences is left out.
        """
        from engine.timeseries.metrics import scores as S

        _, enc = self._require_fitted()
        if column not in enc.static_columns:
            raise InvalidOptionError(f"{column!r} is not a static column; the static columns are {enc.static_columns}.")
        if not enc.num_numeric:
            raise InvalidOptionError("Per-class fidelity compares numeric channels; this model has none.")
        real_df, syn_df = read_input(real), read_input(synthetic)
        c = enc.num_numeric
        out: dict[str, float] = {}
        for value in pd.unique(syn_df[column].dropna()):
            r_part, s_part = real_df[real_df[column] == value], syn_df[syn_df[column] == value]
            if r_part.empty or s_part.empty:
                continue
            r, s = enc.transform(r_part), enc.transform(s_part)
            if len(r.lengths) < 2 or len(s.lengths) < 2:
                continue
            rx, sx = r.x[:, :, :c].astype(np.float64), s.x[:, :, :c].astype(np.float64)
            ks = float(np.mean(list(S.marginal_ks(rx, r.mask, sx, s.mask).values())))
            acf = S.autocorrelation_distance(rx, r.mask, sx, s.mask)
            parts = [1.0 - ks] + ([1.0 - acf / 2] if np.isfinite(acf) else [])
            out[str(value)] = float(np.mean(parts))
        return out

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, real_data: Any, synthetic_data: Any = None, *, num_sequences: int | None = None, seed: int = 0,
                 **options: Any):
        """Score synthetic sequences (default: freshly sampled, as many as the real ones) against real ones.

        Both are read in the format the model was trained on; the scores are those of
        :func:`engine.timeseries.metrics.evaluator.evaluate_timeseries` (``options`` go there).
        """
        from engine.timeseries.metrics.evaluator import evaluate_timeseries

        _, enc = self._require_fitted()
        real = enc.transform(read_input(real_data))
        if synthetic_data is None:
            synthetic_data = self.sample(num_sequences or len(real.lengths), seed=seed, anomaly_rate=0.0)
        synthetic = enc.transform(read_input(synthetic_data))
        return evaluate_timeseries(real, synthetic, encoder=enc, seed=seed, **options)

    # ------------------------------------------------------------------ save/load
    def _artifact(self) -> Artifact:
        model, enc = self._require_fitted()
        return Artifact(
            model=self.model,
            config={"front_door": {"sequence_length": self.sequence_length, "stride": self.stride,
                                   "anomaly_rate": self.anomaly_rate, "anomalies": {
                                       "types": list(self.anomaly_config.types), "spike": self.anomaly_config.spike,
                                       "level_shift": self.anomaly_config.level_shift, "drift": self.anomaly_config.drift,
                                       "dropout_length": self.anomaly_config.dropout_length,
                                       "dropout_value": self.anomaly_config.dropout_value}}},
            schema=enc.layout.to_dict(),
            preprocessor=enc.to_dict(),
            model_state=model.extra_state(),
            tensors=model.state_tensors(),
        )

    @classmethod
    def _from_artifact(cls, art: Artifact) -> TimeSeriesSynthesizer:
        with reading("config.json"):
            front = dict(art.config.get("front_door", {}))
            synth = cls(art.model, model_config=art.config.get("model_config", {}),
                        sequence_length=front.get("sequence_length"), stride=front.get("stride"),
                        anomaly_rate=front.get("anomaly_rate", 0.0), anomalies=front.get("anomalies"), show_progress=False)
        with reading("preprocessor.json"):
            enc = SequenceEncoder.from_dict(art.preprocessor)
            synth.entity_column, synth.time_column, synth.static_columns = enc.entity_column, enc.time_column, enc.static_columns
        with reading("weights.safetensors"):
            model = synth.model_class()(synth._config_object(), SequenceLayout.from_dict(art.schema))
            model.load_state_tensors(art.tensors)
            model.load_extra_state(art.model_state)
        synth._model, synth._encoder = model, enc
        return synth
