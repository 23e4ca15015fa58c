"""The time-series modality: encoder round trips, bad input, anomalies, metrics, both models, the interfaces.

One Ray Train run (a tiny TimeGAN on a small panel, module fixture) serves every test
that needs a fitted synthesizer; the diffusion model is exercised in process through its
``train_step`` and ``generate``, as the contract allows.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from engine.core.errors import InvalidConditionError, InvalidDataError, InvalidOptionError, SynthError
from engine.timeseries.anomalies import inject_anomalies
from engine.timeseries.metrics import scores as S
from engine.timeseries.transforms import SequenceEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _panel(n: int = 30, seed: int = 0, irregular: bool = False) -> pd.DataFrame:
    """Devices at two sites, 6 to 10 hourly readings each: a numeric sine, an integer counter and an on/off state."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n):
        length, site = int(rng.integers(6, 11)), ("north", "south")[e % 2]
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 30)))
        gaps = rng.integers(1, 4, size=length) if irregular else np.ones(length, dtype=int)
        times = start + pd.to_timedelta(np.cumsum(gaps) - gaps[0], unit="h")
        phase = rng.uniform(0, 6)
        for k in range(length):
            rows.append({"device": e, "timestamp": times[k], "site": site,
                         "temp": float(np.sin(k / 2 + phase) + (3.0 if site == "north" else 0.0)), "count": k * 2,
                         "state": ("on", "off")[(k + e) % 2]})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fitted(ray_session, tmp_path_factory):
    """A tiny TimeGAN (three phases) trained once through Ray Train on the panel by ``synth fit`` (in process), and loaded."""
    from engine import load_synthesizer
    from engine.cli import main

    root = tmp_path_factory.mktemp("ts")
    _panel().to_parquet(root / "panel.parquet", index=False)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["fit", str(root / "panel.parquet"), "--model", "timegan", "--out", str(root / "model"), "--quiet",
                     "--model-config", json.dumps({"hidden_dim": 8, "num_layers": 1, "embedding_epochs": 2, "supervised_epochs": 1}),
                     "--entity-column", "device", "--time-column", "timestamp", "--static-columns", "site",
                     "--epochs", "2", "--batch-size", "16"])
    finally:
        torch.set_num_threads(old)
    assert code == 0
    return load_synthesizer(root / "model"), root / "model"


# ---------------------------------------------------------------------------- encoder
def test_panel_round_trip_keeps_values_times_categories_and_variable_lengths():
    df = _panel()
    enc = SequenceEncoder(entity_column="device", time_column="timestamp", static_columns=["site"]).fit(df)
    e = enc.transform(df)
    assert enc.layout.steps == 10 and enc.layout.static_dim == 2 and enc.freq_ == 3600.0
    assert sorted(set(e.lengths.tolist())) == sorted(set(df.groupby("device").size().tolist()))
    assert e.mask.sum() == len(df) and np.abs(e.x).max() <= 1.0 + 1e-6
    out = enc.to_frame(enc.decode_arrays(e.x, e.lengths, e.starts), e.lengths, e.static_raw)
    assert list(out.columns) == list(df.columns)
    pd.testing.assert_frame_equal(out.drop(columns="device"), df.drop(columns="device"), check_dtype=False, atol=1e-5)
    assert out["count"].dtype.kind == "i" and out.groupby("device").ngroups == 30


def test_irregular_time_stamps_become_a_learned_gap_channel_and_come_back():
    df = _panel(irregular=True)
    enc = SequenceEncoder(entity_column="device", time_column="timestamp").fit(df)
    assert enc.gap_channel and enc.freq_ is None
    e = enc.transform(df)
    out = enc.to_frame(enc.decode_arrays(e.x, e.lengths, e.starts), e.lengths, e.static_raw)
    assert (out["timestamp"] - df["timestamp"]).abs().max() < pd.Timedelta(seconds=1)


def test_one_long_series_is_cut_into_windows_with_a_sequence_id():
    series = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=50, freq="D"), "a": np.arange(50.0), "b": np.arange(50.0) ** 2})
    enc = SequenceEncoder(time_column="time", sequence_length=8, stride=3).fit(series)
    e = enc.transform(series)
    assert enc.kind_ == "windows" and e.x.shape == (15, 8, 2)  # starts 0, 3, ..., 42
    out = enc.to_frame(enc.decode_arrays(e.x, e.lengths, e.starts), e.lengths, e.static_raw)
    assert list(out.columns) == ["sequence_id", "time", "a", "b"]
    window = out[out["sequence_id"] == 2]
    np.testing.assert_allclose(window["a"], np.arange(6.0, 14.0), atol=1e-9)
    assert window["time"].iloc[0] == pd.Timestamp("2024-01-07")


def test_wide_array_round_trip_with_nan_padding():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 7, 3))
    x[1, 4:] = np.nan
    x[3, 6:] = np.nan
    enc = SequenceEncoder().fit(x)
    e = enc.transform(x)
    assert e.lengths.tolist() == [7, 4, 7, 6, 7]
    back = enc.to_array(enc.decode_arrays(e.x, e.lengths, e.starts), e.lengths)
    np.testing.assert_allclose(back, x, atol=1e-5)  # float32 encoding; NaN where x is NaN


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        (lambda d: d, {"time_column": "when"}, "time column 'when' is not in the data"),
        (lambda d: d.iloc[::-1], {"time_column": "timestamp"}, r"not increasing within entity \d+"),
        (lambda d: d, {"sequence_length": 9}, r"Entity \d+ .*has \d+ time steps, fewer than sequence_length=9"),
        (lambda d: d.assign(temp="hot"), {"numeric_columns": ["temp"]}, "'temp' was given as numeric"),
        (lambda d: d.assign(temp=np.nan), {}, "'temp' is missing \\(NaN\\) at every step"),
        (lambda d: d, {"static_columns": ["region"]}, "static column 'region' is not in the data"),
        (lambda d: d, {"static_columns": ["count"]}, "static column 'count' changes within entity"),
    ],
)
def test_bad_input_is_refused_naming_the_column_or_entity(change, kwargs, message):
    options = {"entity_column": "device", **kwargs}
    with pytest.raises(InvalidDataError, match=message):
        SequenceEncoder(**options).fit(change(_panel()))


# ---------------------------------------------------------------------------- anomalies
def test_anomalies_follow_the_rate_and_label_exactly_the_changed_steps():
    n, steps = 2000, 20
    values = np.zeros((n, steps, 2)) + np.array([10.0, -5.0])
    lengths = np.full(n, steps)
    lengths[:100] = 5
    out, labels = inject_anomalies(values, lengths, np.array([2.0, 0.5]), 0.3, np.random.default_rng(0))
    anomalous = labels["is_anomaly"].any(axis=1)
    assert abs(anomalous.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)  # within binomial noise
    changed = (out != values).any(axis=2)
    np.testing.assert_array_equal(changed, labels["is_anomaly"])  # dropout to 0 changes 10 and -5 too
    assert not labels["is_anomaly"][:100, 5:].any()  # never on the padding
    kinds = set(labels["anomaly_type"][labels["is_anomaly"]])
    assert kinds == {"spike", "level_shift", "drift", "dropout"}
    assert (labels["anomaly_type"][~labels["is_anomaly"]] == "").all()
    spikes = (labels["anomaly_type"] == "spike")
    delta = np.abs(out - values).max(axis=2)[spikes]
    assert np.allclose(np.sort(np.unique(np.round(delta, 6))), [2.5, 10.0])  # 5 scales of channel 1 or 0


# ---------------------------------------------------------------------------- metrics
def _smooth(n: int, steps: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[None, :]
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    a = np.sin(t / 3 + phase)
    return np.stack([a, 0.8 * a + 0.2 * rng.normal(size=a.shape)], axis=2)


def test_metrics_on_known_cases():
    real, other = _smooth(120, seed=1), _smooth(120, seed=2)
    shuffled = other[:, np.random.default_rng(3).permutation(16)]
    m = np.ones(real.shape[:2])
    assert S.autocorrelation_distance(real, m, other, m) < 0.05 < S.autocorrelation_distance(real, m, shuffled, m)
    independent = np.stack([other[:, :, 0], other[np.random.default_rng(4).permutation(120), :, 1]], axis=2)
    assert S.cross_correlation_distance(real, m, other, m) < 0.05 < S.cross_correlation_distance(real, m, independent, m)
    assert max(S.marginal_ks(real, m, real, m).values()) == 0.0
    # The classifier tells time-shuffled sines from sines; it cannot tell sines from sines.
    fast = {"steps": 100, "lr": 1e-2, "hidden": 8, "seed": 0}
    same = S.discriminative_score(real, m, other, m, **fast)["discriminative_score"]
    apart = S.discriminative_score(real, m, shuffled, m, **fast)["discriminative_score"]
    assert apart > 0.35 and same < 0.25
    # Copies of real sequences sit at DTW 0, nearer than any other real sequence.
    dtw = S.dtw_nearest(real, m, real[:20], m[:20], num_synthetic=10, num_real=120)
    assert dtw["dtw_nearest_real"] == 0.0 and dtw["dtw_share_closer_than_any_real"] == 1.0
    assert S.dtw_nearest(real, m, other, m, num_synthetic=10, num_real=60)["dtw_nearest_real"] > 0
    # One-step prediction trained on sines beats one trained on shuffled time, on real sines.
    good = S.predictive_score(other, m, real, m, steps=100, lr=1e-2)
    bad = S.predictive_score(shuffled, m, real, m, steps=100, lr=1e-2)
    assert good < 0.5 * bad


def test_tsne_picture_keeps_real_and_synthetic_apart_only_when_they_differ():
    real, other = _smooth(60, seed=1), _smooth(60, seed=2)
    m = np.ones(real.shape[:2])

    def separation(a, b):  # distance of the two centroids over the mean spread of the points
        return float(np.linalg.norm(a.mean(0) - b.mean(0)) / np.concatenate([a - a.mean(0), b - b.mean(0)]).std())

    a, b = S.tsne_projection(real, m, other, m, max_points=40)
    apart = separation(*S.tsne_projection(real, m, other + 2.0, m, max_points=40))
    assert a.shape == (40, 2) and b.shape == (40, 2)
    assert separation(a, b) < 0.5 < 2 < apart


def _with_gaps(n: int = 60, rate: float = 0.3, counter: bool = True) -> pd.DataFrame:
    """The panel with its temperature missing at ``rate`` of the steps and its counter (nullable Int64) at a tenth."""
    df = _panel(n)
    rng = np.random.default_rng(0)
    df.loc[rng.random(len(df)) < rate, "temp"] = np.nan
    if counter:
        df["count"] = df["count"].astype("Int64")
        df.loc[rng.random(len(df)) < 0.1, "count"] = pd.NA
    return df


def test_missing_values_round_trip_through_missing_indicator_channels():
    df = _with_gaps()
    enc = SequenceEncoder(entity_column="device", time_column="timestamp", static_columns=["site"]).fit(df)
    assert enc.nullable_ == ["temp", "count"] and enc.layout.channels == 2 + 2 + 2  # values, on/off, two indicators
    e = enc.transform(df)
    assert np.array_equal(e.x[:, :, -2][e.mask > 0] > 0, np.isnan(df["temp"].to_numpy()))
    out = SequenceEncoder.from_dict(enc.to_dict()).to_frame(enc.decode_arrays(e.x, e.lengths, e.starts), e.lengths, e.static_raw)
    pd.testing.assert_series_equal(out["temp"].isna(), df["temp"].isna())
    pd.testing.assert_series_equal(out["count"], df["count"])  # nullable Int64 with its gaps where they were
    np.testing.assert_allclose(out["temp"], df["temp"], atol=1e-6)
    # No missing value: no indicator (the layout of complete data is unchanged).
    assert SequenceEncoder(entity_column="device", static_columns=["site"]).fit(_panel()).nullable_ == []


def test_a_model_reproduces_the_real_missing_rate():
    """The diffusion model, trained in process on the encoded gaps, generates missing steps at about the real rate."""
    from engine.timeseries.models.diffusion import DiffusionTSConfig, SequenceDiffusionModel

    df = _with_gaps(counter=False)
    enc = SequenceEncoder(entity_column="device", time_column="timestamp", static_columns=["site"]).fit(df)
    e = enc.transform(df)
    torch.manual_seed(0)
    model = SequenceDiffusionModel(DiffusionTSConfig(d_model=16, num_heads=2, num_layers=1, timesteps=50, sampling_steps=5, lr=3e-3),
                                   enc.layout)
    optimizers, gen = model.configure_optimizers(), torch.Generator().manual_seed(0)
    batch = {k: torch.from_numpy(v) for k, v in e.training_data().items()}

    def missing_rate() -> float:
        x = model.generate(len(e.lengths), {"static": e.static, "mask": e.mask}, torch.Generator().manual_seed(1))
        return float(enc.to_frame(enc.decode_arrays(x, e.lengths, e.starts), e.lengths, e.static_raw)["temp"].isna().mean())

    real = float(df["temp"].isna().mean())
    untrained = missing_rate()
    for _ in range(100):
        model.train_step(batch, optimizers, gen)
    # Broken indicators would give 0 (none decoded), about 0.74 (sign flipped) or the untrained rate.
    assert abs(missing_rate() - real) < 0.06 and abs(untrained - real) > 0.2


def test_dtw_matches_a_plain_dynamic_programme():
    rng = np.random.default_rng(5)
    a, refs = rng.normal(size=(6, 2)), rng.normal(size=(3, 7, 2))
    lens = np.array([7, 4, 5])

    def plain(x, y):
        d = np.full((len(x) + 1, len(y) + 1), np.inf)
        d[0, 0] = 0
        for i in range(1, len(x) + 1):
            for j in range(1, len(y) + 1):
                d[i, j] = np.linalg.norm(x[i - 1] - y[j - 1]) + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
        return d[-1, -1]

    got = S._dtw_to_many(a, 6, refs, lens)
    np.testing.assert_allclose(got, [plain(a, refs[k, : lens[k]]) for k in range(3)])


# ---------------------------------------------------------------------------- models
def test_diffusion_model_learns_in_process_and_generates_by_seed():
    from engine.timeseries.models.diffusion import DiffusionTSConfig, SequenceDiffusionModel
    from engine.timeseries.transforms import SequenceLayout

    torch.manual_seed(0)
    layout = SequenceLayout(steps=12, channels=2, static_dim=1)
    model = SequenceDiffusionModel(DiffusionTSConfig(d_model=16, num_heads=2, num_layers=1, timesteps=50, sampling_steps=5, lr=3e-3), layout)
    x = torch.from_numpy(_smooth(64, steps=12).astype(np.float32))
    mask = torch.ones(64, 12)
    mask[:8, 9:] = 0
    batch = {"x": x * mask[:, :, None], "mask": mask, "static": torch.ones(64, 1)}
    optimizers = model.configure_optimizers()
    gen = torch.Generator().manual_seed(0)
    losses = [model.train_step(batch, optimizers, gen)["loss"] for _ in range(80)]
    # Predicting x0 = 0 (the mean) scores the masked mean square of the data; the denoiser must beat it clearly.
    trivial = float((batch["x"] ** 2).sum() / (2 * mask.sum()))
    assert losses[0] > 0.7 * trivial and np.mean(losses[-10:]) < 0.65 * trivial
    cond = {"static": np.ones((5, 1), np.float32), "mask": np.ones((5, 12), np.float32)}
    cond["mask"][0, 6:] = 0
    a = model.generate(5, cond, torch.Generator().manual_seed(3))
    b = model.generate(5, cond, torch.Generator().manual_seed(3))
    assert a.shape == (5, 12, 2) and np.array_equal(a, b) and not a[0, 6:].any()
    # Sampling settings for one call: other steps give other sequences, and the model keeps its own.
    c = model.generate(5, cond, torch.Generator().manual_seed(3), sampling_steps=2, sampling_eta=1.0)
    assert not np.allclose(a, c) and not c[0, 6:].any() and model.config.sampling_steps == 5
    with pytest.raises(InvalidOptionError, match="'sampling_steps' parameter.*at most timesteps=50"):
        model.generate(1, None, torch.Generator(), sampling_steps=51)


def test_timegan_trains_its_three_phases_in_order(fitted):
    synth, _ = fitted
    phases = [row.get("phase") for row in synth.history_]
    assert phases == ["embedding", "embedding", "supervised", "joint", "joint"]
    assert {"loss_reconstruction"} <= set(synth.history_[0]) and {"loss_g", "loss_e", "loss_d"} <= set(synth.history_[-1])


# ---------------------------------------------------------------------------- front door
def test_sample_exact_count_conditions_lengths_and_calendar(fitted):
    synth, _ = fitted
    real = _panel()
    out = synth.sample(7, conditions={"site": "north"}, seed=4)
    assert list(out.columns) == list(real.columns)
    assert out["device"].nunique() == 7 and (out["site"] == "north").all()
    lengths = out.groupby("device").size()
    assert set(lengths) <= set(real[real["site"] == "north"].groupby("device").size())
    steps = out.groupby("device")["timestamp"].diff().dropna()
    assert (steps == pd.Timedelta(hours=1)).all()
    assert set(out.groupby("device")["timestamp"].min()) <= set(real.groupby("device")["timestamp"].min())
    assert set(out["state"]) <= {"on", "off"} and out["count"].dtype.kind == "i"
    with pytest.raises(InvalidConditionError, match="'site' has no value 'east'"):
        synth.sample(3, conditions={"site": "east"})
    with pytest.raises(InvalidConditionError, match="static columns are \\['site'\\]"):
        synth.sample(3, conditions={"temp": 1})


def test_sample_refuses_generation_options_the_model_does_not_take(fitted):
    synth, _ = fitted
    with pytest.raises(InvalidOptionError, match="sampling_steps for the 'timegan' model; it takes none"):
        synth.sample(3, seed=1, sampling_steps=5)


def test_anomaly_rate_adds_labelled_columns(fitted):
    synth, _ = fitted
    out = synth.sample(40, anomaly_rate=0.5, seed=1)
    assert {"is_anomaly", "anomaly_type"} <= set(out.columns)
    flagged = out.groupby("device")["is_anomaly"].any()
    assert 0.15 < flagged.mean() < 0.85
    assert set(out.loc[out["is_anomaly"], "anomaly_type"]) <= {"spike", "level_shift", "drift", "dropout"}
    assert "is_anomaly" not in synth.sample(3, seed=1).columns


def test_save_load_sample_equality_and_seed_determinism(fitted, tmp_path):
    from engine import load_synthesizer

    synth, _ = fitted
    loaded = load_synthesizer(synth.save(tmp_path / "again"))
    assert type(loaded).__name__ == "TimeSeriesSynthesizer" and loaded.static_columns == ["site"]
    pd.testing.assert_frame_equal(loaded.sample(5, seed=9), synth.sample(5, seed=9))
    assert not synth.sample(5, seed=9).equals(synth.sample(5, seed=10))


def test_sharded_sampling_writes_the_shards_sample_table_gives(fitted, tmp_path):
    from engine.batch.sharded import sample_to_parquet

    synth, path = fitted
    result = sample_to_parquet(path, tmp_path / "shards", num_rows=7, rows_per_shard=4, seed=2, num_actors=1,
                               conditions={"site": "south"})
    frames = pd.concat(pd.read_parquet(f) for f in result.files).reset_index(drop=True)
    expected = pd.concat([synth.sample_table(4, conditions={"site": "south"}, seed=2, stream=0, row_offset=0).to_pandas(),
                          synth.sample_table(3, conditions={"site": "south"}, seed=2, stream=1, row_offset=4).to_pandas()])
    pd.testing.assert_frame_equal(frames, expected.reset_index(drop=True), check_dtype=False)
    assert sorted(frames["device"].unique()) == list(range(7))


def test_evaluate_gives_scores_and_an_html_report(fitted, tmp_path):
    synth, _ = fitted
    report = synth.evaluate(_panel(seed=3), steps=20, dtw_sequences=5)
    for key in ("discriminative_score", "predictive_score", "autocorrelation_distance", "cross_correlation_distance",
                "ks_mean", "dtw_nearest_real"):
        assert np.isfinite(report.scores[key]), key
    assert not report.failures
    html = (report.save(tmp_path) / "report.html").read_text()
    assert html.count("<svg") >= 4 and "discriminative_score" in html and "t-SNE" in html and "PCA" in html


def test_cli_samples_and_describes_a_saved_model(fitted, tmp_path, capsys):
    from engine.cli import main

    _, path = fitted
    capsys.readouterr()
    code = main(["sample", str(path), "--rows", "6", "--seed", "1", "--condition", "site=north", "--anomaly-rate", "0.5",
                 "--out", str(tmp_path / "s.csv")])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    assert "wrote 6 sequences" in out.out
    rows = pd.read_csv(tmp_path / "s.csv")
    assert rows["device"].nunique() == 6 and (rows["site"] == "north").all() and "is_anomaly" in rows
    assert main(["info", str(path)]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["modality"] == "timeseries" and card["sequence"]["static_columns"] == ["site"]


def test_cli_fit_sample_evaluate_end_to_end(fitted, tmp_path, capsys):
    """``synth fit`` made the fixture's model; ``synth sample`` and ``synth evaluate --model-dir`` run on it (in process)."""
    from engine.cli import main

    _, path = fitted
    real = path.parent / "panel.parquet"
    assert main(["sample", str(path), "--rows", "12", "--seed", "3", "--out", str(tmp_path / "s.parquet")]) == 0
    rows = pd.read_parquet(tmp_path / "s.parquet")
    assert rows["device"].nunique() == 12 and list(rows.columns) == list(pd.read_parquet(real).columns)
    assert main(["evaluate", str(real), str(tmp_path / "s.parquet"), "--model-dir", str(path), "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["details"]["num_synthetic"] == 12 and report["details"]["num_real"] == 30
    assert 0 <= report["scores"]["discriminative_score"] <= 0.5 and np.isfinite(report["scores"]["predictive_score"])
    assert "t-SNE" in (tmp_path / "r" / "report.html").read_text()
    capsys.readouterr()
    assert main(["evaluate", str(real), str(tmp_path / "s.parquet"), "--model-dir", str(path), "--target", "temp",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "--target does not apply to evaluating a timeseries model" in capsys.readouterr().err
    from jobs.evaluate import main as job

    assert job(["--real", str(real), "--synthetic", str(tmp_path / "s.parquet"), "--model-dir", str(path),
                "--holdout", str(real), "--out", str(tmp_path / "r3")]) == 2  # the job reaches the same front door
    assert "--holdout does not apply to evaluating a timeseries model" in capsys.readouterr().err


def test_front_door_refuses_bad_options_before_training():
    from engine import TimeSeriesSynthesizer

    with pytest.raises(SynthError, match="'model' parameter of TimeSeriesSynthesizer"):
        TimeSeriesSynthesizer("wavenet")
    with pytest.raises(SynthError, match="'anomaly_rate' parameter must be a number in \\[0, 1\\]"):
        TimeSeriesSynthesizer(anomaly_rate=1.5)
    with pytest.raises(SynthError, match="num_heads"):
        TimeSeriesSynthesizer(model_config={"d_model": 10, "num_heads": 4})
    with pytest.raises(InvalidDataError, match="time column 'ts' is not in the data"):
        TimeSeriesSynthesizer().fit(_panel(), entity_column="device", time_column="ts")


# ---------------------------------------------------------------------------- rebalance, augment
def test_rebalance_draws_exact_counts_of_each_static_value_as_whole_fresh_sequences(fitted):
    synth, _ = fitted
    out = synth.rebalance("site", 40, ratios={"north": 0.5, "south": 0.5}, seed=3)
    assert list(out.columns) == list(_panel().columns)
    per_device = out.groupby("device", sort=False)["site"].agg(["nunique", "first"])
    assert (per_device["nunique"] == 1).all() and len(per_device) == 40
    assert per_device["first"].value_counts().to_dict() == {"north": 20, "south": 20}
    # Whole sequences shuffled: each device's rows together, in time order, the two sites interleaved.
    assert (out["device"] != out["device"].shift()).sum() == 40
    assert (out.groupby("device")["timestamp"].diff().dropna() == pd.Timedelta(hours=1)).all()
    assert per_device["first"].iloc[:20].nunique() == 2
    rare = synth.rebalance("site", 10, ratios={"south": 0.9, "north": 0.1}, seed=3)
    assert rare.groupby("device")["site"].first().value_counts().to_dict() == {"south": 9, "north": 1}
    assert synth.rebalance("site", 7, seed=1).groupby("device")["site"].first().value_counts().sort_index().to_list() == [4, 3]
    with pytest.raises(SynthError, match="static columns are \\['site'\\]"):
        synth.rebalance("temp", 4)


def test_augment_adds_synthetic_sequences_keeping_or_balancing_the_static_shares(fitted):
    synth, _ = fitted
    panel = _panel()
    real = panel[(panel["site"] == "north") | (panel["device"] < 6)].reset_index(drop=True)  # 15 north, 3 south
    kept = synth.augment(real, 2.0, target="site", seed=2)
    sites = kept.groupby(["source", "device"])["site"].first()
    assert sites["real"].value_counts().to_dict() == {"north": 15, "south": 3}
    assert sites["synthetic"].value_counts().to_dict() == {"north": 15, "south": 3}
    assert not set(sites["synthetic"].index) & set(real["device"])  # fresh ids, none shared with a real entity
    back = kept[kept["source"] == "real"].drop(columns="source").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, real, check_dtype=False)
    balanced = synth.augment(real, 2.0, target="site", preserve_distribution=False, seed=2)
    totals = balanced.groupby(["source", "device"])["site"].first().value_counts().to_dict()
    assert totals == {"north": 18, "south": 18}
    assert synth.augment(real, 1.5, seed=2).groupby("source")["device"].nunique().to_dict() == {"real": 18, "synthetic": 9}


def test_class_fidelity_is_one_for_the_real_sequences_and_lower_for_others(fitted):
    synth, _ = fitted
    real = _panel()
    assert synth.class_fidelity(real, real, "site") == {"north": 1.0, "south": 1.0}
    noisy = real.assign(temp=real["temp"] + np.random.default_rng(0).normal(0, 2, len(real)))
    scores = synth.class_fidelity(real, noisy, "site")
    assert set(scores) == {"north", "south"} and all(0 <= v < 0.9 for v in scores.values())
    sampled = synth.class_fidelity(real, synth.rebalance("site", 10, seed=0), "site")
    assert set(sampled) == {"north", "south"} and all(0 <= v <= 1 for v in sampled.values())
