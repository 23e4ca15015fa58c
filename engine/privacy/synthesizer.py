"""The privacy front door: ``DPSynthesizer``.

Differentially private synthesis of tables with a budget (epsilon, delta) that the whole
pipeline respects: the encoder's structure (public or private, :mod:`.preprocessing`),
the noisy category counts of DP-CTGAN's conditional vector, and DP-SGD training
(:mod:`.accounting`, Opacus) are releases on one :class:`~.accounting.PrivacyLedger`
whose total, by basic composition, never exceeds the budget; training stops where the
accountant says the budget ends. ``model="aim"`` and ``model="mst"`` are the non-neural,
marginal-based models (:mod:`.marginal`).

Example::

    dp = DPSynthesizer(epsilon=1.0, delta=1e-5)                     # model="dp_ctgan"
    private = dp.generate(sensitive_data=records, num_samples=10_000)
    dp.epsilon_spent_                                               # <= 1.0
    report = dp.verify_privacy(original=records, synthetic=private)
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidOptionError, NotFittedError
from engine.privacy.accounting import PrivacyLedger, check_accountant, check_budget, plan_epochs
from engine.privacy.images import IMAGE_MODELS, fit_private_images
from engine.privacy.preprocessing import PrivateTabularEncoder, noisy_category_frequencies

MODELS = ("dp_ctgan", "dp_tvae", "mst", "aim", "dp_dcgan")
MARGINAL_MODELS = ("mst", "aim")
DEFAULT_EPOCHS = {"dp_ctgan": 30, "dp_tvae": 30}


class DPSynthesizer:
    """Differentially private table synthesizer.

    Args:
        epsilon, delta: the total budget (epsilon > 0; 0 <= delta < 1/n, checked against the table).
        model: ``"dp_ctgan"`` (default), ``"dp_tvae"``, ``"aim"`` or ``"mst"``.
        accountant: ``"rdp"`` or ``"prv"`` (Opacus' accountants) for DP-SGD.
        max_grad_norm: per-row clipping norm of DP-SGD.
        noise_multiplier: fix the noise (the steps are then cut to the budget); None: solved from the budget.
        expected_batch_size: rows per DP-SGD step in expectation (Poisson sampling rate = this / n).
        preprocessing_fraction: share of epsilon for the encoder's private releases (only when
            some column's structure is not public), ``counts_fraction`` for DP-CTGAN's noisy
            category counts; the rest trains. ``delta_fraction`` of delta goes to category releases.
        public_bounds, public_categories, nullable_columns: public knowledge that saves budget
            and keeps the preprocessing from reading the rows (see :class:`PrivateTabularEncoder`).
        model_config: the model's hyperparameters (network sizes, learning rates; for AIM
            ``degree``, ``max_cells``, ``rounds``, ``num_particles``, ``sweeps``, ``min_ess``, ``max_workload`` of :class:`.marginal.AIM`).
        num_workers: Ray Train workers (DP-SGD's noise is added once over all workers).
        num_bins: bins per numeric column for MST and AIM.
        image_size, channels: for ``model="dp_dcgan"`` (images, see :mod:`engine.privacy.images`), as for
            ``ImageSynthesizer``; ``public_categories={"label": [...]}`` makes the class names public.

    After ``fit``: ``epsilon_spent_`` (never above ``epsilon``), ``delta_spent_``, ``ledger_``,
    ``privacy_`` (accountant, noise multiplier, clipping norm, steps, sampling rate, shares).
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        delta: float = 1e-5,
        *,
        model: str = "dp_ctgan",
        accountant: str = "rdp",
        max_grad_norm: float = 1.0,
        noise_multiplier: float | None = None,
        expected_batch_size: int = 256,
        preprocessing_fraction: float = 0.1,
        counts_fraction: float = 0.05,
        delta_fraction: float = 0.1,
        public_bounds: Mapping[str, Sequence[float]] | None = None,
        public_categories: Mapping[str, Sequence[Any]] | None = None,
        nullable_columns: Sequence[str] | None = None,
        model_config: Mapping[str, Any] | None = None,
        num_workers: int = 1,
        num_bins: int = 32,
        image_size: int | None = None,
        channels: int | None = None,
    ):
        if model not in MODELS:
            raise InvalidOptionError(f"The 'model' parameter of DPSynthesizer must be one of {', '.join(map(repr, MODELS))}. Got {model!r} instead.")
        self.epsilon, self.delta = check_budget(epsilon, delta)
        self.model = model
        self.accountant = check_accountant(accountant)
        for name, value, ok in (
            ("max_grad_norm", max_grad_norm, isinstance(max_grad_norm, (int, float)) and max_grad_norm > 0),
            ("noise_multiplier", noise_multiplier, noise_multiplier is None or (isinstance(noise_multiplier, (int, float)) and noise_multiplier > 0)),
            ("expected_batch_size", expected_batch_size, isinstance(expected_batch_size, int) and expected_batch_size >= 1),
            ("preprocessing_fraction", preprocessing_fraction, 0 < preprocessing_fraction < 1),
            ("counts_fraction", counts_fraction, 0 < counts_fraction < 1 and preprocessing_fraction + counts_fraction < 1),
            ("delta_fraction", delta_fraction, 0 < delta_fraction < 1),
            ("num_bins", num_bins, isinstance(num_bins, int) and num_bins >= 2),
        ):
            if not ok:
                raise InvalidOptionError(f"The {name!r} parameter of DPSynthesizer is out of range. Got {value!r} instead.")
        self.max_grad_norm = float(max_grad_norm)
        self.noise_multiplier = noise_multiplier
        self.expected_batch_size = expected_batch_size
        self.preprocessing_fraction = preprocessing_fraction
        self.counts_fraction = counts_fraction
        self.delta_fraction = delta_fraction
        self.public_bounds = dict(public_bounds or {})
        self.public_categories = dict(public_categories or {})
        self.nullable_columns = nullable_columns
        self.model_config = dict(model_config or {})
        self.num_workers = num_workers
        self.num_bins = num_bins
        self.image_size, self.channels = image_size, channels
        self.synthesizer_: Any = None  # a fitted TabularSynthesizer (dp_ctgan, dp_tvae)
        self.mst_: Any = None  # a fitted marginal model (MST or AIM)
        self.encoder_: PrivateTabularEncoder | None = None

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: Any,
        *,
        epochs: int | None = None,
        seed: int = 0,
        categorical_columns: Sequence[str] | None = None,
        continuous_columns: Sequence[str] | None = None,
        integer_columns: Sequence[str] | None = None,
        show_progress: bool = False,
        labels: Any = None,
    ) -> "DPSynthesizer":
        """Learn ``data`` (a DataFrame, Arrow table or CSV/Parquet path; images for dp_dcgan, with ``labels``) within the budget."""
        if self.model in IMAGE_MODELS:
            fitted = fit_private_images(self, data, labels, epochs=epochs, seed=seed, show_progress=show_progress)
            self.synthesizer_, self.ledger_, self.privacy_ = fitted.synthesizer, fitted.ledger, fitted.privacy
            self.epsilon_spent_, self.delta_spent_ = fitted.ledger.epsilon_spent, fitted.ledger.delta_spent
            return self
        from engine.tabular.schema.infer import infer_schema
        from engine.tabular.schema.io import read_table

        started = time.perf_counter()
        table = read_table(data)
        n = len(table)
        check_budget(self.epsilon, self.delta, n)
        schema = infer_schema(
            table, categorical_columns=categorical_columns, continuous_columns=continuous_columns, integer_columns=integer_columns
        )
        ledger = PrivacyLedger(self.epsilon, self.delta)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        encoder = PrivateTabularEncoder(
            public_bounds=self.public_bounds, public_categories=self.public_categories,
            nullable_columns=self.nullable_columns, seed=seed,
        )
        private_cols = encoder.private_columns(schema)
        encoder.epsilon = self.preprocessing_fraction * self.epsilon if private_cols else 0.0
        encoder.delta = self.delta_fraction * self.delta if encoder.needs_delta(schema) else 0.0
        encoder.fit(table, schema)
        for r in encoder.releases_:
            ledger.spend(f"preprocessing: {r['what']}", r["epsilon"], r["delta"])
        self.encoder_, self.schema_ = encoder, schema
        info: dict[str, Any] = {"model": self.model, "epsilon": self.epsilon, "delta": self.delta, "num_rows": n}

        if self.model in MARGINAL_MODELS:
            from engine.privacy.marginal import AIM, MST, epsilon_of, rho_for

            eps_left, delta_left = ledger.epsilon_left, ledger.delta_left
            rho = rho_for(eps_left, delta_left)
            if self.model == "aim":
                known = {"degree", "max_cells", "rounds", "num_particles", "sweeps", "min_ess", "max_workload"}
                unknown = sorted(set(self.model_config) - known)
                if unknown:
                    raise InvalidOptionError(f"model_config for AIM takes {sorted(known)}; got unknown keys {unknown}.")
                model = AIM(num_bins=self.num_bins, **self.model_config)
            else:
                model = MST(num_bins=self.num_bins)
            codes = model.discretise(table, encoder)
            model.fit(codes, rho, rng)
            rho_used = model.rho_used_ if self.model == "aim" else rho
            ledger.spend(f"{self.model.upper()} marginals (zCDP rho = {rho_used:.6g}, converted)", epsilon_of(rho_used, delta_left), delta_left)
            self.mst_ = model
            if self.model == "aim":
                info.update({"mechanism": "AIM: Gaussian marginals chosen adaptively by the exponential mechanism (zCDP)", "rho": rho,
                             "rho_used": rho_used, "measurements": len(model.measurements_), "rounds": len(model.selections_)})
            else:
                info.update({"mechanism": "MST: Gaussian marginals + exponential-mechanism tree (zCDP)", "rho": rho, "edges": len(model.edges_)})
        else:
            self._fit_torch(table, schema, encoder, ledger, rng, info, epochs=epochs, seed=seed, show_progress=show_progress)
        self.ledger_ = ledger
        self.epsilon_spent_ = ledger.epsilon_spent
        self.delta_spent_ = ledger.delta_spent
        info.update({"epsilon_spent": self.epsilon_spent_, "delta_spent": self.delta_spent_, "ledger": ledger.to_dict(),
                     "fit_seconds": time.perf_counter() - started})
        self.privacy_ = info
        if self.synthesizer_ is not None:
            self.synthesizer_._source.model.privacy_ = info  # saved in the artifact's model_state.json
        return self

    def _fit_torch(self, table, schema, encoder, ledger, rng, info, *, epochs, seed, show_progress) -> None:
        from engine.tabular.sampling.sources import TorchRowSource
        from engine.tabular.synthesizer import TabularSynthesizer

        n = len(table)
        encoded = encoder.transform(table, seed=seed)
        freqs: list[list[float]] = []
        if self.model == "dp_ctgan" and encoder.layout_.category_spans:
            eps_counts = min(self.counts_fraction * self.epsilon, ledger.epsilon_left)
            freqs = noisy_category_frequencies(encoded, encoder, eps_counts, rng)
            ledger.spend("category counts for the conditional vector", eps_counts)
        plan = plan_epochs(
            ledger, rows=n, epochs=DEFAULT_EPOCHS[self.model] if epochs is None else epochs, expected_batch_size=self.expected_batch_size,
            max_grad_norm=self.max_grad_norm, accountant=self.accountant, noise_multiplier=self.noise_multiplier,
        )
        model_config = {
            **self.model_config, **plan.model_config(seed),
            **({"category_frequencies": freqs} if self.model == "dp_ctgan" else {}),
        }
        synth = TabularSynthesizer(self.model, model_config=model_config, num_workers=self.num_workers)
        from dataclasses import asdict

        from engine.core.runtime import ray_session
        from engine.training.config import TrainOptions
        from engine.training.loop import train_torch_model

        model_cls = synth.model_class()
        config = synth._config_object()
        model = model_cls(config, encoder.layout_)  # built here too, so a bad config fails before Ray starts
        options = TrainOptions(epochs=1, batch_size=max(2, self.expected_batch_size), seed=seed, max_steps=plan.steps, show_progress=show_progress)
        with ray_session():
            result = train_torch_model(
                model_name=self.model, model_class=model_cls, model_config=asdict(config), layout=encoder.layout_,
                data=encoded, options=options, scaling=synth.scaling,
            )
        model.load_state_tensors(result.state_tensors)
        model.load_extra_state(result.extra_state)
        synth.training_options_ = asdict(options)
        synth.history_ = list(result.history)
        self.train_result_ = result
        steps_done = int(model.private_steps)
        eps_train = plan.spend(ledger, steps_done, "DP-SGD training")
        synth._source = TorchRowSource(model, encoder, schema, synth.sampling_precision)
        synth.schema_, synth.constraints_ = schema, []
        self.synthesizer_ = synth
        info.update({
            "mechanism": "DP-SGD (Opacus), Poisson sampling", "accountant": self.accountant,
            "noise_multiplier": plan.noise_multiplier, "max_grad_norm": plan.max_grad_norm, "sample_rate": plan.sample_rate,
            "steps": steps_done, "steps_requested": plan.steps_requested, "epsilon_training": eps_train,
            "delta_training": plan.delta, "num_workers": self.num_workers,
            "noise_placement": "once per step on rank 0 over all workers (Opacus DistributedDPOptimizer)",
            "secure_rng": False,
        })

    # --------------------------------------------------------------- sample
    def sample(self, num_rows: int | None, *, seed: int | None = 0, **options: Any) -> pd.DataFrame:
        """``num_rows`` synthetic rows (an ``ImageSet`` for dp_dcgan; ``options`` go to its sampler, e.g. ``labels=``)."""
        if self.synthesizer_ is None and self.mst_ is None:
            raise NotFittedError("This DPSynthesizer is not fitted yet: call fit(data) or generate(...) first.")
        if self.mst_ is not None:
            rng = np.random.default_rng(seed)
            return self.mst_.decode(self.mst_.sample_codes(int(num_rows), rng), self.encoder_, rng)
        return self.synthesizer_.sample(num_rows, seed=seed, **options)

    def generate(self, sensitive_data: Any, num_samples: int, *, epochs: int | None = None, seed: int = 0, **fit_options: Any) -> pd.DataFrame:
        """Fit on ``sensitive_data`` within the budget and return ``num_samples`` synthetic rows."""
        return self.fit(sensitive_data, epochs=epochs, seed=seed, **fit_options).sample(num_samples, seed=seed)

    def describe(self) -> dict[str, Any]:
        """The fitted model's card, with the privacy account (epsilon spent, delta, noise, clipping)."""
        if self.synthesizer_ is None:
            raise NotFittedError("describe needs a fitted dp_ctgan, dp_tvae or dp_dcgan.")
        return {**self.synthesizer_.describe(), "privacy": {k: v for k, v in self.privacy_.items() if k != "ledger"}}

    def save(self, path: str) -> str:
        """Save a fitted dp_ctgan / dp_tvae / dp_dcgan (loadable with ``engine.load_synthesizer``; the privacy account is in model_state.json)."""
        if self.synthesizer_ is None:
            raise NotFittedError("Only a fitted dp_ctgan, dp_tvae or dp_dcgan DPSynthesizer can be saved (MST and AIM models are not saved in this version).")
        return self.synthesizer_.save(path)

    def evaluate(self, real_data: Any, synthetic_data: Any = None, **options: Any) -> Any:
        """The tabular evaluation report (dp_ctgan, dp_tvae), or for dp_dcgan the image report
        (``evaluate(real_images, real_labels, **options)``: it generates its own images); both print the DP guarantee."""
        if self.synthesizer_ is None:
            raise NotFittedError("evaluate needs a fitted dp_ctgan or dp_tvae; audit MST output with verify_privacy.")
        return self.synthesizer_.evaluate(real_data, synthetic_data, **options)

    # -------------------------------------------------------------- privacy
    def verify_privacy(self, original: Any, synthetic: Any, *, holdout: Any = None, attribute_secrets: Sequence[str] | None = None, seed: int = 0) -> Any:
        """The privacy audit of ``synthetic`` against ``original`` (see :func:`engine.privacy.audit.verify_privacy`).

        ``holdout``: real rows not used in training; without it a share of ``original`` is used as holdout
        only for the distance metrics (stated in the report). ``attribute_secrets``: the columns the
        attribute-inference attack targets. The DP guarantee is printed beside the attacks.
        """
        from engine.privacy.audit import verify_privacy

        return verify_privacy(
            original, synthetic, holdout=holdout, guarantee=getattr(self, "privacy_", None),
            attribute_secrets=None if attribute_secrets is None else list(attribute_secrets), seed=seed,
        )

    def generate_anonymous(
        self,
        real_data_with_pii: Any,
        *,
        pii_columns: Sequence[str] | None = None,
        num_samples: int | None = None,
        utility_threshold: float | None = None,
        target: str | None = None,
        locale: str = "en_US",
        epochs: int | None = None,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Private synthetic rows with the PII columns replaced by fake values (see :func:`engine.privacy.pii.generate_anonymous`)."""
        from engine.privacy.pii import generate_anonymous

        return generate_anonymous(
            self, real_data_with_pii, pii_columns=pii_columns, num_samples=num_samples, utility_threshold=utility_threshold,
            target=target, locale=locale, epochs=epochs, seed=seed,
        )
