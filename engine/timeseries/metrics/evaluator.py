"""``evaluate_timeseries``: every score of :mod:`~engine.timeseries.metrics.scores` in one report.

A metric that fails is recorded in the report's ``failures`` (with the reason) and
the others are still computed.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.core.errors import InvalidDataError
from engine.timeseries.metrics import scores as S
from engine.timeseries.metrics.report import REAL_COLOUR, SYNTHETIC_COLOUR, TimeSeriesReport, lines_svg, scatter_svg


def _as_pair(data: Any, encoder: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, mask)`` of the numeric channels on the encoder's [-1, 1] scale."""
    from engine.timeseries.transforms import EncodedSequences

    if isinstance(data, EncodedSequences):
        c = encoder.num_numeric if encoder is not None else data.x.shape[2]
        return np.asarray(data.x[:, :, :c], dtype=np.float64), np.asarray(data.mask, dtype=np.float64)
    if isinstance(data, tuple) and len(data) == 2:
        return np.asarray(data[0], dtype=np.float64), np.asarray(data[1], dtype=np.float64)
    if encoder is not None:
        from engine.timeseries.io import read_input

        return _as_pair(encoder.transform(read_input(data)), encoder, name)
    a = np.asarray(data, dtype=np.float64)
    if a.ndim != 3:
        raise InvalidDataError(f"The {name} sequences must be an (n, T, channels) array here; got shape {a.shape}.")
    return np.nan_to_num(a), (~np.isnan(a).all(axis=2)).astype(np.float64)


def evaluate_timeseries(
    real: Any, synthetic: Any, *, encoder: Any = None, entity_column: str | None = None, time_column: str | None = None,
    static_columns: Any = (), sequence_length: int | None = None, steps: int = 500, predictive_baseline: bool = False,
    dtw_sequences: int = 50, max_lag: int = 10, seed: int = 0, plots: bool = True, tsne_sequences: int = 300,
) -> TimeSeriesReport:
    """Score ``synthetic`` sequences against ``real`` ones.

    Args:
        real, synthetic: ``(n, T, channels)`` arrays (NaN-padded for shorter sequences), or
            data in the format ``encoder`` was fitted on; without an encoder, a table is read with
            ``entity_column``/``time_column``/``static_columns``/``sequence_length`` by an encoder
            fitted on ``real`` (min-max scaling of the real data, the TimeGAN protocol).
        steps: training steps of the post-hoc GRUs (the paper: 2000 and 5000).
        predictive_baseline: also train the predictive GRU on real data (the floor to compare with).
        dtw_sequences: synthetic sequences compared by DTW (it is quadratic in the length).
        tsne_sequences: sequences of each side in the t-SNE picture (its cost grows with their square).
    """
    started = time.perf_counter()
    if encoder is None and not isinstance(real, np.ndarray) and not isinstance(real, tuple):
        from engine.timeseries.io import read_input
        from engine.timeseries.transforms import SequenceEncoder

        frame = read_input(real)
        if not isinstance(frame, np.ndarray):
            encoder = SequenceEncoder(entity_column=entity_column, time_column=time_column, static_columns=static_columns,
                                      sequence_length=sequence_length).fit(frame)
    elif isinstance(real, np.ndarray):
        # Arrays: scale both by the real data's range per channel, as the TimeGAN protocol does.
        lo, hi = np.nanmin(real, axis=(0, 1)), np.nanmax(real, axis=(0, 1))
        span = np.where(hi > lo, hi - lo, 1.0)
        real = 2 * (np.asarray(real, dtype=np.float64) - lo) / span - 1
        synthetic = 2 * (np.asarray(synthetic, dtype=np.float64) - lo) / span - 1 if isinstance(synthetic, np.ndarray) else synthetic
    r, rm = _as_pair(real, encoder, "real")
    s, sm = _as_pair(synthetic, encoder, "synthetic")
    if r.shape[2] != s.shape[2] or r.shape[2] == 0:
        raise InvalidDataError(f"Real and synthetic sequences must share their numeric channels; got {r.shape[2]} and {s.shape[2]}.")
    names = list(encoder.numeric_) if encoder is not None else [f"c{i}" for i in range(r.shape[2])]
    report = TimeSeriesReport(scores={}, details={"num_real": len(r), "num_synthetic": len(s), "steps": r.shape[1]})

    def attempt(name: str, fn) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a failing metric is reported, the others go on
            report.failures[name] = f"{type(exc).__name__}: {exc}"
            return None

    disc = attempt("discriminative_score", lambda: S.discriminative_score(r, rm, s, sm, steps=steps, seed=seed))
    if disc:
        report.scores.update(disc)
    pred = attempt("predictive_score", lambda: S.predictive_score(s, sm, r, rm, steps=steps, seed=seed))
    if pred is not None:
        report.scores["predictive_score"] = pred
    if predictive_baseline:
        base = attempt("predictive_score_real", lambda: S.predictive_score(r, rm, r, rm, steps=steps, seed=seed))
        if base is not None:
            report.scores["predictive_score_real"] = base
    acf = attempt("autocorrelation_distance", lambda: S.autocorrelation_distance(r, rm, s, sm, max_lag=max_lag))
    if acf is not None:
        report.scores["autocorrelation_distance"] = acf
    cross = attempt("cross_correlation_distance", lambda: S.cross_correlation_distance(r, rm, s, sm))
    if cross is not None:
        report.scores["cross_correlation_distance"] = cross
    ks = attempt("marginal_ks", lambda: S.marginal_ks(r, rm, s, sm, names))
    if ks:
        report.ks = ks
        report.scores["ks_mean"] = float(np.mean(list(ks.values())))
    dtw = attempt("dtw", lambda: S.dtw_nearest(r, rm, s, sm, num_synthetic=dtw_sequences, num_real=4 * dtw_sequences, seed=seed))
    if dtw:
        report.scores.update(dtw)
    if plots:
        pca = attempt("pca", lambda: S.pca_projection(r, rm, s, sm, seed=seed))
        if pca is not None:
            report.pictures["PCA (fitted on real)"] = scatter_svg(*pca)
        tsne = attempt("tsne", lambda: S.tsne_projection(r, rm, s, sm, max_points=tsne_sequences, seed=seed))
        if tsne is not None:
            report.pictures["t-SNE (real and synthetic together)"] = scatter_svg(*tsne)
        rng = np.random.default_rng(seed)
        for c, name in enumerate(names[:4]):
            pick_r, pick_s = rng.permutation(len(r))[:5], rng.permutation(len(s))[:5]
            real_lines = [r[i, : int(rm[i].sum()), c] for i in pick_r]
            syn_lines = [s[i, : int(sm[i].sum()), c] for i in pick_s]
            report.pictures[f"samples: {name}"] = lines_svg(real_lines, REAL_COLOUR) + lines_svg(syn_lines, SYNTHETIC_COLOUR)
    report.details["seconds"] = time.perf_counter() - started
    return report
