"""Private preprocessing: an encoder for tables whose every data-dependent choice is public or paid for.

What the ordinary :class:`~engine.tabular.transforms.tabular.TabularEncoder` learns from the
rows (category lists and frequencies, numeric ranges, mixture modes, which columns have
missing values) would leak them. :class:`PrivateTabularEncoder` learns the same structure:

- from **public knowledge** the user gives (``public_bounds`` for numeric columns,
  ``public_categories`` for discrete ones, ``nullable_columns``): no row is read;
- otherwise from **differentially private releases**, each paid from the ledger:
  categories by a stability histogram over the observed values (Laplace noise, a
  threshold that makes values held by few rows unlikely to appear: (epsilon, delta)-DP),
  numeric ranges from a thresholded Laplace histogram over fixed public bins (powers of
  two), refined to the 0.5% and 99.5% quantiles by the exponential mechanism over 64 equal
  edges inside (pure epsilon-DP), and
  missing values by Laplace-noised counts.

Numeric columns get one mode (min-max scaling into the tanh range) instead of a fitted
mixture: a private mixture would cost budget for little gain at small epsilon. The
schema (column names, kinds, dtypes, constant values) is treated as public metadata.
Neighbouring tables differ by one added or removed row (as in Opacus' accounting).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import InvalidOptionError
from engine.privacy.errors import PrivacyBudgetError
from engine.tabular.schema.kinds import ColumnKind, TableSchema
from engine.tabular.transforms.columns import ColumnCodecState, TableCodec, _json_scalar
from engine.tabular.transforms.mode_normalizer import ModeNormalizer
from engine.tabular.transforms.tabular import TabularEncoder

_DISCRETE = (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)
_NUMERIC = (ColumnKind.CONTINUOUS, ColumnKind.INTEGER, ColumnKind.DATETIME)
_POW_LOW, _POW_HIGH = -16, 62  # the public bins of the first bounds histogram: +-[2^k, 2^(k+1))
_REFINE_BINS = 64
_QUANTILES = (0.005, 0.995)  # the refined range keeps what lies between these noisy quantiles


def laplace(counts: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Counts with Laplace noise of scale 1/epsilon (sensitivity 1: a row adds to one bin)."""
    return np.asarray(counts, dtype=np.float64) + rng.laplace(0.0, 1.0 / epsilon, size=np.shape(counts))


def _pow2_bin_edges() -> np.ndarray:
    """Edges of the public first-stage bins: negative powers of two, a bin around zero, positive powers."""
    pos = 2.0 ** np.arange(_POW_LOW, _POW_HIGH + 2)
    return np.concatenate([-pos[::-1], pos])  # (-2^63 .. -2^-16, 2^-16 .. 2^63): len(pos)*2 edges


def _quantile_em(sorted_x: np.ndarray, candidates: np.ndarray, target: float, epsilon: float, rng: np.random.Generator) -> int:
    """Index of the candidate edge the exponential mechanism picks for the rank ``target``.

    Utility ``-|#(x < c) - target|`` has sensitivity 1 under adding or removing a row.
    """
    ranks = np.searchsorted(sorted_x, candidates, side="left").astype(np.float64)
    logits = -epsilon / 2.0 * np.abs(ranks - target)
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(candidates), p=p / p.sum()))


def private_bounds(x: np.ndarray, epsilon: float, rng: np.random.Generator, *, column: str = "") -> tuple[float, float, float]:
    """``(low, high, noisy_missing_count)`` of a numeric column under ``epsilon``-DP.

    A fifth of the budget counts the missing values (Laplace). Two fifths: a Laplace histogram
    over fixed public bins (signed powers of two from 2^-16 to 2^63); the bins whose noisy
    count clears a threshold (so that an empty bin passes with probability 5% at most) give
    a coarse range. The last two fifths refine it: the exponential mechanism picks the 0.5%
    and 99.5% quantiles among 64 equal edges inside. The number of rows is treated as public
    (as Opacus' accounting does).
    """
    e = epsilon / 5.0
    missing = np.isnan(x)
    v = np.sort(np.clip(x[~missing], -(2.0**_POW_HIGH), 2.0**_POW_HIGH))
    noisy_missing = float(laplace(np.array([missing.sum()]), e, rng)[0])
    edges = _pow2_bin_edges()
    noisy = laplace(np.histogram(v, bins=edges)[0], 2 * e, rng)
    threshold = math.log(len(noisy) / 0.05) / (2 * e)
    kept = np.flatnonzero(noisy > threshold)
    if not len(kept):
        raise PrivacyBudgetError(
            f"The privacy budget for column {column!r} (epsilon = {epsilon:.3g}) is too small to find its range "
            f"privately (no bin's noisy count cleared {threshold:.1f}): give its range in public_bounds, or raise epsilon."
        )
    low, high = float(edges[kept[0]]), float(edges[kept[-1] + 1])
    fine = np.linspace(low, high, _REFINE_BINS + 1)
    n = len(v)
    a = _quantile_em(v, fine, _QUANTILES[0] * n, e, rng)
    b = _quantile_em(v, fine, _QUANTILES[1] * n, e, rng)
    a, b = min(a, b), max(a, b)
    low, high = float(fine[a]), float(fine[b])
    if high <= low:
        high = low + max(abs(low) * 1e-3, 1.0)
    return low, high, noisy_missing


def private_categories(
    values: pd.Series, epsilon: float, delta: float, rng: np.random.Generator, *, max_categories: int
) -> tuple[list[Any], np.ndarray, float]:
    """``(labels, noisy_counts, noisy_missing)``: the observed categories a stability histogram releases.

    Laplace(1/epsilon) on the count of every observed value; a value is kept when its noisy
    count exceeds ``1 + ln(1/(2 delta)) / epsilon``, so a value held by one row appears with
    probability at most delta: (epsilon, delta)-DP. Missing values are one more (always
    released) bin. At most ``max_categories`` labels, by noisy count.
    """
    counts = values.dropna().map(_json_scalar).value_counts(sort=False)
    labels = list(counts.index)
    noisy = laplace(counts.to_numpy(), epsilon, rng)
    threshold = 1.0 + math.log(1.0 / (2.0 * delta)) / epsilon
    keep = np.flatnonzero(noisy > threshold)
    # Decreasing noisy count, ties broken by the label's text so the order is deterministic.
    order = keep[np.lexsort((np.array([str(labels[i]) for i in keep], dtype=str), -noisy[keep]))][:max_categories]
    noisy_missing = float(laplace(np.array([values.isna().sum()]), epsilon, rng)[0])
    return [labels[i] for i in order], noisy[order], noisy_missing


class PrivateTabularEncoder(TabularEncoder):
    """A :class:`TabularEncoder` fitted under differential privacy or from public knowledge only.

    Args:
        epsilon, delta: the budget of the whole preprocessing, shared equally by the
            columns that need a release (0 is fine when everything is public).
        public_bounds: ``{column: (low, high)}`` for numeric columns (datetimes in epoch seconds).
        public_categories: ``{column: [labels]}`` for categorical/boolean columns.
        nullable_columns: the columns that may hold missing values (public); None: found privately.
        max_categories: labels per discrete column at most.
        seed: seeds the noise.

    After ``fit``: ``releases_`` lists ``(what, epsilon, delta)`` of every release; ``epsilon_spent_``
    and ``delta_spent_`` their sums (0 when nothing was read).
    """

    def __init__(
        self,
        *,
        epsilon: float = 0.0,
        delta: float = 0.0,
        public_bounds: Mapping[str, Sequence[float]] | None = None,
        public_categories: Mapping[str, Sequence[Any]] | None = None,
        nullable_columns: Sequence[str] | None = None,
        max_categories: int = 1000,
        seed: int = 0,
    ):
        super().__init__(max_modes=1, max_categories=max_categories, seed=seed)
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self.public_bounds = {k: (float(v[0]), float(v[1])) for k, v in dict(public_bounds or {}).items()}
        self.public_categories = {k: list(v) for k, v in dict(public_categories or {}).items()}
        self.nullable_columns = None if nullable_columns is None else list(nullable_columns)
        for name, (lo, hi) in self.public_bounds.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InvalidOptionError(f"public_bounds[{name!r}] must be two finite numbers (low, high) with low < high. Got {(lo, hi)!r} instead.")
        self.releases_: list[dict[str, Any]] = []

    # ------------------------------------------------------------- planning
    def private_columns(self, schema: TableSchema) -> list[str]:
        """The modelled columns whose structure needs a private release (nothing public covers it)."""
        self._check_names(schema)
        out = []
        for c in schema.columns:
            nullable_known = self.nullable_columns is not None
            if c.kind in _NUMERIC and not (c.name in self.public_bounds and nullable_known):
                out.append(c.name)
            elif c.kind in _DISCRETE and not (c.name in self.public_categories and nullable_known):
                out.append(c.name)
        return out

    def needs_delta(self, schema: TableSchema) -> bool:
        """Whether a release needs delta > 0 (a stability histogram over unknown categories)."""
        return any(c.kind in _DISCRETE and c.name not in self.public_categories for c in schema.columns)

    def _check_names(self, schema: TableSchema) -> None:
        names = {c.name: c for c in schema.columns}
        for option, given, kinds in (("public_bounds", self.public_bounds, _NUMERIC), ("public_categories", self.public_categories, _DISCRETE)):
            for name in given:
                if name not in names:
                    raise InvalidOptionError(f"{option} names column {name!r}, which the table does not have. Columns: {', '.join(map(repr, names))}.")
                if names[name].kind not in kinds:
                    raise InvalidOptionError(f"{option} names column {name!r}, whose kind is {names[name].kind.value!r}; {option} takes {' / '.join(k.value for k in kinds)} columns.")
        for name in self.nullable_columns or []:
            if name not in names:
                raise InvalidOptionError(f"nullable_columns names column {name!r}, which the table does not have.")

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame, schema: TableSchema) -> "PrivateTabularEncoder":
        private = self.private_columns(schema)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 20]))
        if private and self.epsilon <= 0:
            raise PrivacyBudgetError(
                f"Columns {', '.join(map(repr, private))} need a private release to be encoded (no public bounds, "
                "categories or nullability for them), but the preprocessing budget is epsilon = 0."
            )
        eps_col = math.nextafter(self.epsilon / max(len(private), 1), 0.0)  # k shares never add up past the budget
        n_unknown = sum(1 for c in schema.columns if c.kind in _DISCRETE and c.name not in self.public_categories)
        if n_unknown and self.delta <= 0:
            raise PrivacyBudgetError("Releasing unknown category lists privately needs delta > 0: give public_categories or a delta.")
        delta_col = math.nextafter(self.delta / max(n_unknown, 1), 0.0)
        self.releases_ = []
        states: list[ColumnCodecState] = []
        self.normalizers_, self.nullable_ = {}, {}
        for c in schema.columns:
            st = ColumnCodecState(name=c.name, kind=c.kind.value, dtype=c.dtype, datetime_format=c.datetime_format)
            public_null = None if self.nullable_columns is None else c.name in self.nullable_columns
            if c.kind in _NUMERIC:
                if c.name in private:
                    x = TableCodec._numbers(data[c.name], st) if c.name in data else np.zeros(0)
                    if c.name in self.public_bounds:
                        # Only whether values are missing is unknown: one noisy count.
                        lo, hi = self.public_bounds[c.name]
                        noisy_missing = float(laplace(np.array([np.isnan(x).sum()]), eps_col, rng)[0])
                        self.releases_.append({"what": f"missing count of {c.name!r}", "epsilon": eps_col, "delta": 0.0})
                    else:
                        lo, hi, noisy_missing = private_bounds(x, eps_col, rng, column=c.name)
                        self.releases_.append({"what": f"range and missing count of {c.name!r}", "epsilon": eps_col, "delta": 0.0})
                    nullable = public_null if public_null is not None else noisy_missing > 2.0 / eps_col
                    st.null_rate = float(np.clip(noisy_missing / max(len(data), 1), 0, 1)) if nullable else 0.0
                else:
                    lo, hi = self.public_bounds[c.name]
                    nullable = bool(public_null)
                    st.null_rate = 0.5 if nullable else 0.0  # unknown share; only whether it is > 0 matters here
                if c.kind == ColumnKind.INTEGER:
                    lo, hi = math.floor(lo), math.ceil(hi)
                st.low, st.high = float(lo), float(hi)
                self.nullable_[c.name] = bool(nullable)
                # One mode: alpha = (x - centre) / (half range), so [low, high] maps onto [-1, 1].
                self.normalizers_[c.name] = ModeNormalizer.from_dict(
                    {"means": [(lo + hi) / 2.0], "stds": [max((hi - lo) / 8.0, 1e-12)], "weights": [1.0], "fit_rows": 0}
                )
            elif c.kind in _DISCRETE:
                if c.name in self.public_categories:
                    labels = [_json_scalar(v) for v in self.public_categories[c.name]]
                    if len(labels) < 1:
                        raise InvalidOptionError(f"public_categories[{c.name!r}] must list at least one label.")
                    freqs = np.full(len(labels), 1.0 / len(labels))
                    if c.name in private:  # only nullability unknown: noisy counts of the public labels and of missing
                        s = data[c.name]
                        codes = pd.Categorical(s.map(_json_scalar), categories=pd.Index(labels, dtype=object)).codes
                        counts = np.bincount(codes[codes >= 0], minlength=len(labels))
                        noisy = laplace(np.append(counts, s.isna().sum()), eps_col, rng)
                        self.releases_.append({"what": f"category counts of {c.name!r}", "epsilon": eps_col, "delta": 0.0})
                        freqs = np.clip(noisy[:-1], 0, None) + 1e-3
                        freqs = freqs / freqs.sum()
                        noisy_missing = float(noisy[-1])
                        nullable = public_null if public_null is not None else noisy_missing > 2.0 / eps_col
                    else:
                        nullable = bool(public_null)
                        noisy_missing = 0.0
                else:
                    labels, noisy_counts, noisy_missing = private_categories(
                        data[c.name], eps_col, delta_col, rng, max_categories=self.max_categories
                    )
                    self.releases_.append({"what": f"categories of {c.name!r}", "epsilon": eps_col, "delta": delta_col})
                    if not labels:
                        raise PrivacyBudgetError(
                            f"No category of column {c.name!r} survived the private release at epsilon = {eps_col:.3g} "
                            f"(delta = {delta_col:.3g}): give its labels in public_categories, or raise epsilon."
                        )
                    freqs = np.clip(noisy_counts, 1e-3, None)
                    freqs = freqs / freqs.sum()
                    nullable = public_null if public_null is not None else noisy_missing > 2.0 / eps_col
                st.categories = labels
                st.frequencies = freqs.tolist()
                st.null_rate = float(np.clip(noisy_missing / max(len(data), 1), 0, 1)) if nullable else 0.0
                self.nullable_[c.name] = bool(nullable)
            elif c.kind == ColumnKind.IDENTIFIER:
                # Keys are regenerated from 0: the largest real key (which the ordinary codec continues from) is not read.
                st.id_prefix = None if c.dtype.startswith(("int", "uint", "float")) else "id_"
            elif c.kind == ColumnKind.CONSTANT:
                values = data[c.name].dropna()  # schema metadata: the one value schema inference found
                st.constant = _json_scalar(values.iloc[0]) if len(values) else None
            states.append(st)
        codec = TableCodec(max_categories=self.max_categories)
        codec.columns_ = states
        codec._index = {s.name: s for s in states}
        self.codec_ = codec
        self.layout_ = self._build_layout()
        return self

    @property
    def epsilon_spent_(self) -> float:
        return float(sum(r["epsilon"] for r in self.releases_))

    @property
    def delta_spent_(self) -> float:
        return float(sum(r["delta"] for r in self.releases_))


def noisy_category_frequencies(
    encoded: np.ndarray, encoder: TabularEncoder, epsilon: float, rng: np.random.Generator
) -> list[list[float]]:
    """The frequencies of every category span of the encoded table, from Laplace-noised counts.

    ``epsilon`` is shared equally by the spans (a row adds one to one bin of each). These feed
    DP-CTGAN's conditional vector, which would otherwise read the real counts.
    """
    spans = encoder.layout_.category_spans
    out: list[list[float]] = []
    eps = epsilon / max(len(spans), 1)
    for span in spans:
        counts = encoded[:, span.start : span.stop].sum(axis=0)
        noisy = np.clip(laplace(counts, eps, rng), 0, None) + 1e-3
        out.append((noisy / noisy.sum()).tolist())
    return out
