"""The tabular front door: ``TabularSynthesizer``.

One class for every tabular model. ``fit`` reads and validates the data,
infers the schema, fits the preprocessor and trains the model (torch models
through the engine's one Ray Train loop; the Gaussian copula directly);
``sample`` returns exactly the rows asked for, meeting conditions and
constraints; ``save``/``load`` write and read a JSON + safetensors artifact.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from engine.core.errors import InvalidOptionError
from engine.core.synthesizer import FrontDoorOption, Synthesizer, check_seed, reading
from engine.core.precision import check_precision
from engine.training.config import parse_duration
from engine.tabular.models.gaussian_copula import GaussianCopula
from engine.tabular.requirements.conditions import Conditions, coerce_text_value, parse_conditions
from engine.tabular.requirements.constraints import Constraint, check_constraints, constraint_to_dict, parse_constraints
from engine.tabular.sampling.rows import SamplingRequest, generate_rows
from engine.tabular.sampling.sources import CopulaRowSource, TorchRowSource
from engine.tabular.schema.infer import infer_schema
from engine.tabular.schema.io import read_table
from engine.tabular.schema.kinds import TableSchema
from engine.store.artifact import Artifact
from engine.tabular.ray_data import encode_dataset, is_large_source, read_dataset, sample_rows
from engine.tabular.schema.kinds import ColumnKind
from engine.tabular.transforms.columns import TableCodec
from engine.tabular.transforms.tabular import TabularEncoder

COPULA = "gaussian_copula"
DEFAULT_EPOCHS = {"ctgan": 300, "tvae": 300, "tabddpm": 300}
DEFAULT_BATCH_SIZE = {"ctgan": 500, "tvae": 500, "tabddpm": 1024}


class TabularSynthesizer(Synthesizer):
    """Learn a table and generate synthetic rows like it.

    Args:
        model: ``"tabddpm"``, ``"ctgan"``, ``"tvae"`` or ``"gaussian_copula"``; ``None`` (the
            default) chooses at ``fit`` by the data's size and the time budget
            (:func:`default_model`).
        model_config: hyperparameters of the model (see the model's config class),
            e.g. ``{"embedding_dim": 64}`` for CTGAN.
        constraints: rules that every output row satisfies, as objects from
            ``engine.tabular.requirements`` or dicts such as
            ``{"type": "inequality", "low": "start", "high": "end"}``.
        num_workers, use_gpu, cpus_per_worker: how Ray Train scales training
            (``use_gpu=None`` picks a GPU when there is one).
        max_categories: categorical columns with more distinct values keep the
            most frequent ``max_categories - 1`` and pool the rest.
        max_fit_rows: rows of the random subsample the preprocessor is fitted on.

    Example::

        synth = TabularSynthesizer(model="ctgan").fit(df, epochs=300)
        rows = synth.sample(num_rows=1000, conditions={"income": " >50K"}, seed=7)
    """

    modality = "table"
    default_epochs = DEFAULT_EPOCHS
    default_batch_size = DEFAULT_BATCH_SIZE

    def __init__(
        self,
        model: str | None = None,
        *,
        model_config: Mapping[str, Any] | None = None,
        constraints: Sequence[Mapping[str, Any] | Constraint] | None = None,
        num_workers: int = 1,
        use_gpu: bool | None = None,
        cpus_per_worker: float | None = None,
        max_categories: int = 1000,
        max_fit_rows: int = 50_000,
        sampling_precision: str = "auto",
    ):
        if model is None and model_config:
            raise InvalidOptionError(
                "The 'model_config' parameter of TabularSynthesizer needs a 'model' to apply to; with model=None "
                f"the model is chosen at fit. Got model_config={dict(model_config)!r} and no model."
            )
        # With no model, the choice waits for the data (fit); the copula stands in until then.
        super().__init__(model or COPULA, model_config=model_config, num_workers=num_workers, use_gpu=use_gpu, cpus_per_worker=cpus_per_worker)
        self.auto_model = model is None
        self.constraints = list(constraints or [])
        self.max_categories = max_categories
        self.max_fit_rows = max_fit_rows
        self._sampling_precision = check_precision(sampling_precision)
        parse_constraints(self.constraints)  # fail early on a malformed spec
        self._source: TorchRowSource | CopulaRowSource | None = None

    @classmethod
    def cli_options(cls) -> tuple[FrontDoorOption, ...]:
        """Column kinds, metadata and constraints for ``fit``; the sampling precision (see :class:`FrontDoorOption`)."""
        kinds = [
            FrontDoorOption(
                f"{kind}_columns", f"column(s) to model as {kind}, comma-separated; repeatable", many=True,
                flag=f"--{kind}", config_key=f"columns.{kind}", metavar="COLUMNS",
            )
            for kind in ("categorical", "continuous", "integer", "boolean", "datetime", "identifier")
        ]
        return (
            *kinds,
            FrontDoorOption(
                "metadata", 'JSON file overriding column kinds: {"columns": {"age": {"kind": "integer"}}}',
                config_key="columns.metadata", metavar="FILE",
            ),
            FrontDoorOption(
                "constraints", "rules every output row meets: on the command line a YAML/JSON file with a 'constraints' "
                "list (bounds, integer, inequality, fixed_combinations); in a job config the list itself",
                stage="init", type=dict, many=True, read_text=_constraints_file, metavar="FILE",
            ),
            FrontDoorOption(
                "sampling_precision", "numeric precision of generation (ctgan, tvae); 'auto' uses bfloat16 on CPUs that "
                "multiply it natively (default: the precision saved with the model, 'auto' unless set)",
                stage="sample", choices=("auto", "float32", "bfloat16"), flag="--precision", config_key="precision",
            ),
        )

    @property
    def sampling_precision(self) -> str:
        """Precision of the torch models' generation: ``"auto"``, ``"float32"`` or ``"bfloat16"``.

        ``"auto"`` (the default) runs the generator's matrix products in bfloat16
        on hardware that multiplies bfloat16 natively (CPUs with AVX-512 BF16 or
        AMX), several times faster than float32 there, and in float32
        elsewhere, GPUs included. Training is always float32. The same seed gives
        the same rows for a given precision and hardware; ``"float32"`` gives
        the rows of the full-precision network. The copula ignores it.
        """
        return self._sampling_precision

    @sampling_precision.setter
    def sampling_precision(self, value: str) -> None:
        self._sampling_precision = check_precision(value)
        if isinstance(self._source, TorchRowSource):
            self._source.precision = self._sampling_precision

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: Any,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        categorical_columns: Sequence[str] | None = None,
        continuous_columns: Sequence[str] | None = None,
        integer_columns: Sequence[str] | None = None,
        boolean_columns: Sequence[str] | None = None,
        datetime_columns: Sequence[str] | None = None,
        identifier_columns: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        checkpoint_every: int = 10,
        storage_path: str | None = None,
        run_name: str | None = None,
        max_failures: int = 0,
        show_progress: bool = True,
        time_budget: float | str | None = None,
        early_stopping: bool | None = None,
        validate_every: int | None = None,
        patience: int | None = None,
    ) -> "TabularSynthesizer":
        """Learn ``data`` (a DataFrame, a pyarrow Table, or a CSV/Parquet path).

        Column kinds are inferred; the ``*_columns`` lists and ``metadata``
        override them. ``epochs`` and ``batch_size`` default per model; the
        checkpoint options go to the training loop (see ``TrainOptions``).

        ``time_budget`` (seconds, or ``"90s"``, ``"10m"``, ``"1h"``) ends the training of a
        torch model (ctgan, tvae, tabddpm) when it is spent, within one optimisation step;
        ``epochs`` then defaults to a bound the budget is meant to hit first. ``early_stopping``
        (default: on when there is a time budget) holds 10% of the rows out (at most 5,000),
        scores the model on them every ``validate_every`` epochs (default: about 20
        validations per run, every 5 epochs when only a budget bounds it) with the engine's fidelity score, and keeps the best weights,
        not the last; ``patience`` validations without improvement stop the run early. The
        chosen epoch and the scores are in ``history_`` and ``describe()["metrics"]["selection"]``.
        The Gaussian copula fits in one pass and ignores these options.
        """
        refusal = None if self.auto_model else getattr(self.model_class(), "standalone_fit_error", None)
        if refusal:  # a model that may only be trained under a privacy accountant (engine.privacy's DP models)
            raise InvalidOptionError(refusal)
        large = None
        if is_large_source(data):
            from engine.core.runtime import ray_session

            # Read with Ray Data: the driver only ever holds a bounded sample
            # (the Gaussian copula is fitted on that sample itself).
            with ray_session():
                dataset = read_dataset(str(data))
                table = sample_rows(dataset, max_rows=self.max_fit_rows, seed=seed)
                large = dataset
        else:
            table = read_table(data)
        schema = infer_schema(
            table,
            categorical_columns=categorical_columns,
            continuous_columns=continuous_columns,
            integer_columns=integer_columns,
            boolean_columns=boolean_columns,
            datetime_columns=datetime_columns,
            identifier_columns=identifier_columns,
            metadata=metadata,
        )
        if self.auto_model:
            self.model = default_model(len(table) if large is None else None, len(table.columns), parse_duration(time_budget))
        constraints = parse_constraints(self.constraints)
        check_constraints(constraints, schema)
        for c in constraints:
            c.fit(table)

        if self.model == COPULA:
            config = self._config_object()
            codec = TableCodec(max_categories=self.max_categories).fit(table, schema)
            frame = codec.to_numeric(table)
            kinds = {c.name: c.kind for c in schema.columns if c.name in frame.columns}
            # Every code the codec knows gets its interval, even one the copula's subsample lacks.
            num_categories = {st.name: st.num_codes for st in codec.modelled_columns if schema[st.name].kind.is_discrete}
            copula = GaussianCopula(config).fit(frame, kinds, seed=seed, num_categories=num_categories)
            self._source = CopulaRowSource(copula, codec, schema)
            self.training_options_ = {"seed": seed}
            self.history_: list[dict[str, float]] = []
        else:
            from engine.core.runtime import ray_session
            from engine.tabular.validation import HoldoutValidator, split_holdout

            validate = early_stopping if early_stopping is not None else time_budget is not None
            train_table, validator = table, None
            if validate:
                # A large source trains on its Dataset: its driver-side sample is the best reference there is.
                train_table, holdout = (table, table) if large is not None else split_holdout(table, seed)
            # A model may bring its own encoding (TabDDPM's quantile-normal numbers and class indices).
            encoder_class = getattr(self.model_class(), "encoder_class", TabularEncoder)
            encoder = encoder_class(
                max_fit_rows=self.max_fit_rows, max_categories=self.max_categories, seed=seed
            ).fit(table, schema)
            if validate:
                validator = HoldoutValidator(encoder, holdout, schema, seed=seed)
            if validate_every is None:
                # About 20 validations in a run of known length; every 5 epochs in one the budget ends.
                by_budget = epochs is None and time_budget is not None
                validate_every = 5 if by_budget else max(1, (epochs or self.default_epochs.get(self.model, 300)) // 20)
            with ray_session():
                encoded = encode_dataset(large, encoder) if large is not None else encoder.transform(train_table)
                model = self._train_torch(
                    layout=encoder.layout_, data=encoded, epochs=epochs, batch_size=batch_size, seed=seed,
                    checkpoint_every=checkpoint_every, storage_path=storage_path, run_name=run_name,
                    max_failures=max_failures, show_progress=show_progress, validator=validator,
                    time_budget=time_budget, validate_every=validate_every, patience=patience,
                )
            self._source = TorchRowSource(model, encoder, schema, self.sampling_precision)
        self.schema_: TableSchema = schema
        self.constraints_: list[Constraint] = constraints
        return self

    # --------------------------------------------------------------- sample
    def _require_fitted(self) -> TorchRowSource | CopulaRowSource:
        if self._source is None:
            raise self._not_fitted()
        return self._source

    @property
    def codec_(self) -> TableCodec:
        source = self._require_fitted()
        return source.codec if isinstance(source, CopulaRowSource) else source.encoder.codec_

    def parse_conditions(self, conditions: Mapping[str, Any] | None) -> Conditions:
        """Validate ``conditions`` against the fitted schema (raises with what is valid)."""
        self._require_fitted()
        codec = self.codec_
        return parse_conditions(
            conditions, self.schema_, category_code=codec.category_code, numeric_range=codec.numeric_range
        )

    def sample(
        self,
        num_rows: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
        row_offset: int = 0,
        stream: int = 0,
    ) -> pd.DataFrame:
        """Generate exactly ``num_rows`` rows as a pandas DataFrame.

        Args:
            num_rows: how many rows.
            conditions: ``{column: value}`` for categories, ``{column: {"between":
                [low, high]}}`` (or ``">="``, ``"<="``, ``">"``, ``"<"``) for
                numeric or datetime ranges. Every returned row satisfies them.
            seed: the same seed gives the same rows; ``None`` draws a fresh one.
            row_offset, stream: used by the sharded sampler so that shards
                are independent and identifiers stay unique across them.
        """
        source = self._require_fitted()
        if isinstance(num_rows, bool) or not isinstance(num_rows, (int, np.integer)) or num_rows < 0:
            raise InvalidOptionError(f"The 'num_rows' parameter of sample must be an integer >= 0. Got {num_rows!r} instead.")
        seed = check_seed(seed)
        parsed = self.parse_conditions(conditions)
        if num_rows == 0:
            return source.draw(1, None, *_zero_seeds()).iloc[:0]
        request = SamplingRequest(int(num_rows), parsed, int(seed), stream=stream, row_offset=row_offset)
        return generate_rows(source, self.constraints_, request)

    def sample_table(
        self, num_rows: int, *, conditions: Mapping[str, Any] | None = None, seed: int, stream: int = 0, row_offset: int = 0
    ) -> pa.Table:
        """One shard of the sharded sampler as an Arrow table (see :meth:`sample` for the arguments)."""
        rows = self.sample(num_rows, conditions=conditions or None, seed=seed, stream=stream, row_offset=row_offset)
        return pa.Table.from_pandas(rows, preserve_index=False)

    def to_device(self, device: str | torch.device) -> str:
        """Move a torch model (ctgan, tvae) to ``device``; the copula always runs on NumPy.

        Sampling gives the same rows on any device for a given seed only up to
        floating-point differences: noise is always drawn on the CPU.
        Returns the device the model now runs on.
        """
        source = self._require_fitted()
        if isinstance(source, TorchRowSource):
            source.model.to(torch.device(device))
            return str(source.model.device)
        return "cpu"

    # ------------------------------------------------------------- evaluate
    def evaluate(
        self,
        real_data: Any,
        synthetic_data: Any = None,
        *,
        target: str | None = None,
        holdout_data: Any = None,
        seed: int = 0,
    ):
        """Evaluation report of ``synthetic_data`` (or of ``len(real_data)`` fresh rows) against ``real_data``."""
        from engine.evaluation import evaluate_tables

        real = read_table(real_data)
        synthetic = read_table(synthetic_data) if synthetic_data is not None else self.sample(len(real), seed=seed)
        holdout = read_table(holdout_data) if holdout_data is not None else None
        report = evaluate_tables(real, synthetic, holdout=holdout, target=target, schema=self.schema_)
        guarantee = getattr(getattr(self._source, "model", None), "privacy_", None)  # DP models (engine.privacy)
        if guarantee and report.privacy:
            report.privacy["dp_guarantee"] = {k: v for k, v in guarantee.items() if k != "ledger"}
        return report

    # -------------------------------------------------- the interfaces' view
    def coerce_conditions(self, conditions: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Category labels matched loosely (``">50K"`` finds ``" >50K"``), integer columns' text read as numbers."""
        if not conditions:
            return None
        self._require_fitted()
        out: dict[str, Any] = {}
        for column, value in conditions.items():
            if column in self.schema_ and not isinstance(value, Mapping):
                kind = self.schema_[column].kind
                if kind.is_discrete:
                    value = coerce_text_value(column, value, self.codec_.categories(column))
                elif kind == ColumnKind.INTEGER and isinstance(value, str):
                    try:
                        value = int(value)
                    except ValueError:
                        pass  # validation names the column and what it takes
            out[column] = value
        return out

    def conditions_from_strings(self, items: Sequence[str]) -> dict[str, Any] | None:
        return self.coerce_conditions(super().conditions_from_strings(items))

    def condition_values(self, column: str) -> list[Any]:
        """The categories of a categorical or boolean column (what a mixture or rebalance draws)."""
        self._require_fitted()
        if column not in self.schema_:
            raise InvalidOptionError(f"Unknown column {column!r}; the columns are: {', '.join(map(repr, self.schema_.names))}.")
        if not self.schema_[column].kind.is_discrete:
            raise InvalidOptionError(
                f"Column {column!r} is {self.schema_[column].kind.value}: classes to rebalance are a categorical or boolean column's."
            )
        return list(self.codec_.categories(column))

    def read_samples(self, data: Any) -> pa.Table:
        return pa.Table.from_pandas(read_table(data), preserve_index=False)

    def from_table(self, table: pa.Table) -> pd.DataFrame:
        return table.to_pandas()

    def class_fidelity(self, real: Any, synthetic: Any, column: str) -> dict[str, float]:
        """The fidelity score (column shapes and pair trends) of each class of ``column``: its synthetic rows vs its real rows."""
        from engine.tabular.metrics.fidelity import quality_scores

        real_df, syn_df = read_table(real), read_table(synthetic)
        out: dict[str, float] = {}
        for value in pd.unique(syn_df[column].dropna()):
            r, s = real_df[real_df[column] == value], syn_df[syn_df[column] == value]
            if len(r) >= 2 and len(s) >= 2:
                out[str(value)] = float(quality_scores(r, s, self.schema_)["score"])
        return out

    def describe(self) -> dict[str, Any]:
        """Columns with their kinds, categories and ranges, constraints and training metrics."""
        codec = self.codec_
        columns = []
        for col in self.schema_.columns:
            entry = col.to_dict()
            entry["kind"] = col.kind.value
            if col.kind.is_discrete:
                entry["categories"] = codec.categories(col.name)
            elif col.kind.is_numeric:
                entry["range"] = list(codec.numeric_range(col.name))
            columns.append(entry)
        return {
            **super().describe(),
            "num_training_rows": self.schema_.num_rows,
            "columns": columns,
            "constraints": [constraint_to_dict(c) for c in self.constraints_],
        }

    # ------------------------------------------------------------ save/load
    def _artifact(self) -> Artifact:
        source = self._require_fitted()
        if isinstance(source, CopulaRowSource):
            state, arrays = source.model.to_state()
            tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()}
            preprocessor = source.codec.to_dict()
        else:
            state = source.model.extra_state()
            tensors = source.model.state_tensors()
            preprocessor = source.encoder.to_dict()
        return Artifact(
            model=self.model,
            config={
                "max_categories": self.max_categories,
                "max_fit_rows": self.max_fit_rows,
                "sampling_precision": self.sampling_precision,
            },
            schema=self.schema_.to_dict(),
            preprocessor=preprocessor,
            requirements={"constraints": [constraint_to_dict(c) for c in self.constraints_]},
            model_state=state,
            tensors=tensors,
        )

    @classmethod
    def _from_artifact(cls, art: Artifact) -> "TabularSynthesizer":
        # Each part is rebuilt under the name of the file it came from, so a damaged file is named.
        with reading("config.json"):
            cfg = art.config
            synth = cls(
                art.model,
                model_config=cfg.get("model_config", {}),
                constraints=art.requirements.get("constraints", []),
                max_categories=int(cfg.get("max_categories", 1000)),
                max_fit_rows=int(cfg.get("max_fit_rows", 50_000)),
                sampling_precision=cfg.get("sampling_precision", "auto"),
                **cfg.get("scaling", {}),
            )
        with reading("schema.json"):
            schema = TableSchema.from_dict(art.schema)
        if art.model == COPULA:
            with reading("preprocessor.json"):
                codec = TableCodec.from_dict(art.preprocessor)
            with reading("model_state.json and weights.safetensors"):
                arrays = {k: v.numpy() for k, v in art.tensors.items()}
                copula = GaussianCopula.from_state(art.model_state, arrays)
            synth._source = CopulaRowSource(copula, codec, schema)
        else:
            with reading("preprocessor.json"):
                encoder = getattr(synth.model_class(), "encoder_class", TabularEncoder).from_dict(art.preprocessor)
            with reading("model_state.json and weights.safetensors"):
                model = synth.model_class()(synth._config_object(), encoder.layout_)
                model.load_state_tensors(art.tensors)
                model.load_extra_state(art.model_state)
            synth._source = TorchRowSource(model, encoder, schema, synth.sampling_precision)
        with reading("requirements.json"):
            constraints = parse_constraints(art.requirements.get("constraints", []))
            check_constraints(constraints, schema)
        synth.schema_ = schema
        synth.constraints_ = constraints
        return synth


# The default model (see default_model); the thresholds come from bench/tabular_quality.py.
MIN_NETWORK_ROWS = 400
MIN_NETWORK_BUDGET_S = 120.0


def default_model(num_rows: int | None, num_columns: int, time_budget: float | None) -> str:
    """The model ``TabularSynthesizer()`` uses when none is named.

    - the Gaussian copula when the time budget is under 2 minutes (it fits in about a
      second; with 30 s it beat every network on the bench's three tables) and for tables
      under 400 rows: cut to 200 training rows and given 2 minutes, TabDDPM lost to it on
      Breast cancer (QualityReport 0.930 against 0.946, and a DCR share of 0.575: closer
      to its training rows) and won on Adult (0.870 against 0.828);
    - TabDDPM otherwise, trained to the budget (or its default epochs without one). On
      Breast cancer (455 training rows) it beat the copula with 2 minutes (QualityReport
      0.953 against 0.950, TSTR/TRTR 0.99 against 0.87) and without a budget (its 300
      default epochs, 87 s: 0.953, TSTR/TRTR 0.98); with 2 minutes on Gapminder (0.877
      against 0.812) and with 3 on Adult (0.958 against 0.898).

    ``num_rows`` is None for a source too large to count on the driver (a network then).
    """
    if time_budget is not None and time_budget < MIN_NETWORK_BUDGET_S:
        return COPULA
    if num_rows is not None and num_rows < MIN_NETWORK_ROWS:
        return COPULA
    return "tabddpm"


def _constraints_file(path: str) -> list[dict[str, Any]]:
    """The ``constraints`` list of a YAML/JSON requirements file (``--constraints FILE``)."""
    from pathlib import Path

    import yaml

    p = Path(path)
    if not p.is_file():
        raise InvalidOptionError(f"The requirements file {path!r} does not exist.")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise InvalidOptionError(f"The requirements file {path!r} is not valid YAML/JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidOptionError(f"The requirements file {path!r} must hold a mapping (e.g. 'constraints: [...]').")
    return list(doc.get("constraints") or [])


def _zero_seeds() -> tuple[torch.Generator, np.random.Generator]:
    from engine.core.seeds import seed_streams

    return seed_streams(0, 0)
