"""The reversible encoders: exact round trips on every column kind, bounded widths, JSON state."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import InvalidConditionError, InvalidDataError
from engine.tabular.schema import infer_schema
from engine.tabular.transforms import TableCodec, TabularEncoder
from engine.tabular.transforms.mode_normalizer import MIXTURE_FIT_ROWS, ModeNormalizer
from tests.test_schema import every_kind


def _rng():
    return np.random.default_rng(0)


def test_codec_round_trip_is_exact_on_every_kind():
    df = every_kind(200)
    schema = infer_schema(df)
    codec = TableCodec().fit(df, schema)
    frame = codec.to_numeric(df)
    assert "customer_id" not in frame and "site" not in frame  # regenerated, not modelled
    back = codec.from_numeric(frame, rng=_rng(), row_offset=1000)
    for col in ("price", "count", "count_nullable", "colour", "flag", "when", "when_text", "site", "empty"):
        pd.testing.assert_series_equal(back[col], df[col], check_names=False)
    # Regenerated after the largest real key (1199), shifted by the row offset; same dtype.
    assert back["customer_id"].tolist() == list(range(2200, 2400))
    assert back["code"].iloc[0] == "C-01200" and back["code"].is_unique
    assert list(back.columns) == list(df.columns) and back.dtypes.equals(df.dtypes)


def test_encoder_round_trip_on_adult(adult):
    schema = infer_schema(adult)
    enc = TabularEncoder().fit(adult, schema)
    x = enc.transform(adult)
    assert x.dtype == np.float32 and x.shape == (len(adult), enc.layout_.dim)
    back = enc.inverse_transform(x, rng=_rng())
    assert back.dtypes.equals(adult.dtypes)
    for col in adult.columns:
        if adult[col].dtype == object:
            assert (back[col] == adult[col]).all(), col
        else:
            # Values beyond four standard deviations of their mode are clipped by the encoding (as in the paper).
            assert (back[col] == adult[col]).mean() > 0.99, col
    spans = enc.layout_.spans
    assert spans[0].start == 0 and all(a.stop == b.start for a, b in zip(spans, spans[1:]))
    for s in spans:
        block = x[:, s.start : s.stop]
        if s.activation == "softmax":
            assert np.all(block.sum(axis=1) == 1.0)
        else:
            assert np.abs(block).max() <= 0.99


def test_encoder_round_trip_with_nulls_and_every_kind():
    df = every_kind(300)
    df.loc[::7, "price"] = np.nan
    df.loc[::5, "colour"] = None
    enc = TabularEncoder().fit(df, infer_schema(df))
    back = enc.inverse_transform(enc.transform(df), rng=_rng())
    assert back["price"].isna().tolist() == df["price"].isna().tolist()
    assert back["colour"].isna().tolist() == df["colour"].isna().tolist()
    assert (back["colour"].dropna() == df["colour"].dropna()).all()
    assert np.allclose(back["price"].dropna(), df["price"].dropna(), rtol=1e-4)
    pd.testing.assert_series_equal(back["when"], df["when"], check_exact=False, rtol=0, atol=pd.Timedelta("1s"))


def test_high_cardinality_is_capped_and_decodes_real_values():
    rng = np.random.default_rng(0)
    n = 200_000
    values = np.where(rng.random(n) < 0.5, rng.choice(["a", "b", "c"], n), np.char.add("v", rng.integers(0, 100_000, n).astype(str)))
    df = pd.DataFrame({"city": values, "x": rng.normal(size=n)})
    schema = infer_schema(df, categorical_columns=["city"])
    enc = TabularEncoder(max_categories=100).fit(df, schema)
    span = enc.layout_.category_span("city")
    assert span.width == 100  # 99 kept + one pooled slot; never 100,000 wide
    x = enc.transform(df.head(5000))
    assert x.shape[1] < 120
    back = enc.inverse_transform(x, rng=_rng())
    assert set(back["city"]) <= set(df["city"])
    assert back["city"].nunique() > 100  # pooled values come back as real labels


def test_json_state_round_trip_gives_identical_decoding(adult):
    enc = TabularEncoder().fit(adult.head(3000), infer_schema(adult.head(3000)))
    x = enc.transform(adult.head(500))
    clone = TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(clone.transform(adult.head(500)), x)
    pd.testing.assert_frame_equal(clone.inverse_transform(x, rng=_rng()), enc.inverse_transform(x, rng=_rng()))


def test_mixture_is_fitted_on_a_bounded_subsample():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-5, 1, 500_000), rng.normal(5, 1, 500_000)])
    norm = ModeNormalizer.fit(x, rng=rng)
    assert norm.fit_rows == MIXTURE_FIT_ROWS  # a million values, a bounded fit
    big = norm.means[norm.weights > 0.01]
    assert np.all(np.minimum(np.abs(big - 5), np.abs(big + 5)) < 1.0) and (big < 0).any() and (big > 0).any()
    alpha, mode = norm.transform(x[:1000], rng)
    assert np.allclose(norm.inverse(alpha, mode), x[:1000], atol=1e-6)


def test_unknown_category_lists_valid_values(adult):
    enc = TabularEncoder().fit(adult.head(500), infer_schema(adult.head(500)))
    with pytest.raises(Exception, match="Valid values:.* Male"):
        enc.category_index("sex", "Robot")


def test_identifiers_are_unique_across_shards_and_never_reuse_real_keys():
    df = every_kind(100)
    codec = TableCodec().fit(df, infer_schema(df))
    frame = codec.to_numeric(df)
    shards = [codec.from_numeric(frame, rng=_rng(), row_offset=off) for off in (0, 100, 200)]
    for col in ("customer_id", "code"):
        ids = pd.concat([s[col] for s in shards], ignore_index=True)
        assert ids.is_unique and not set(ids) & set(df[col]), col
        assert all(s[col].dtype == df[col].dtype for s in shards)
    assert shards[0]["code"].iloc[0] == "C-00100"


def test_codec_accessors_and_condition_errors():
    rng = np.random.default_rng(1)
    common = rng.choice(["x", "y"], 3000)
    rare = np.char.add("r", np.arange(3000).astype(str))
    df = pd.DataFrame({"tag": np.where(np.arange(3000) % 2 == 0, common, rare), "n": rng.integers(5, 50, 3000)})
    codec = TableCodec(max_categories=10).fit(df, infer_schema(df, categorical_columns=["tag"]))
    cats = codec.categories("tag")
    assert len(cats) == 9 and cats[:2] in (["x", "y"], ["y", "x"])
    freq = codec.category_frequencies("tag")
    assert len(freq) == 10 and np.isclose(freq.sum(), 1.0) and freq[-1] > 0.4  # pooled slot last
    assert codec.category_code("tag", cats[1]) == 1
    with pytest.raises(InvalidConditionError, match=r"'tag'.*Valid values: 'x'|'tag'.*Valid values: 'y'"):
        codec.category_code("tag", "nope")
    pooled = next(v for v in df["tag"] if v not in cats)
    with pytest.raises(InvalidConditionError, match=rf"{pooled!r} is one of the .* rare values of column 'tag'"):
        codec.category_code("tag", pooled)
    assert codec.numeric_range("n") == (float(df["n"].min()), float(df["n"].max()))


def test_decoding_clips_to_the_observed_range_and_accepts_soft_outputs():
    df = every_kind(200)
    flag = df["flag"].astype("boolean")
    flag[::9] = pd.NA
    df["flag"] = flag  # nullable boolean
    df["colour"] = df["colour"].astype("category")
    enc = TabularEncoder().fit(df, infer_schema(df))
    exact = enc.inverse_transform(enc.transform(df), rng=_rng())
    pd.testing.assert_series_equal(exact["flag"], df["flag"])
    pd.testing.assert_series_equal(exact["colour"], df["colour"])
    # What a generator emits: tanh values anywhere in [-1, 1], unnormalised soft blocks.
    soft = np.random.default_rng(2).uniform(-1, 1, (500, enc.layout_.dim)).astype(np.float32)
    back = enc.inverse_transform(soft, rng=_rng())
    assert back.dtypes.equals(df.dtypes) and list(back.columns) == list(df.columns)
    for col in ("price", "count", "when"):
        assert back[col].min() >= df[col].min() and back[col].max() <= df[col].max(), col
    assert set(back["colour"].dropna()) <= set(df["colour"].dropna())
    assert pd.to_datetime(back["when_text"]).between(pd.to_datetime(df["when_text"]).min(), pd.to_datetime(df["when_text"]).max()).all()
    with pytest.raises(InvalidDataError, match=str(enc.layout_.dim)):
        enc.inverse_transform(soft[:, :-1], rng=_rng())


def test_encoder_fits_its_mixtures_on_at_most_max_fit_rows_of_a_million():
    rng = np.random.default_rng(0)
    n = 1_000_000
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], n)})
    enc = TabularEncoder(max_fit_rows=5_000).fit(df, infer_schema(df))
    assert enc.normalizers_["x"].fit_rows == 5_000
    assert enc.codec_.column("x").low == df["x"].min()  # the codec still sees every row's range
    assert enc.layout_.category_span("g").width == 3


def test_variational_mixture_agrees_with_scikit_learn():
    from sklearn.mixture import BayesianGaussianMixture

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(-10, 1, 900), rng.normal(0, 2, 600), rng.normal(20, 0.5, 500)])
    ours = ModeNormalizer.fit(x, rng=np.random.default_rng(0))
    ref = BayesianGaussianMixture(
        n_components=10, weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=1e-3,
        max_iter=200, random_state=0,
    ).fit(x[:, None])
    ref_means = ref.means_[ref.weights_ > 0.05, 0]
    big = ours.means[ours.weights > 0.05]
    # Every heavy component of one fit sits on a heavy component of the other.
    for a, b in ((big, ref_means), (ref_means, big)):
        assert np.abs(a[:, None] - b[None, :]).min(axis=1).max() < 1.0
    for centre, share in ((-10, 0.45), (0, 0.3), (20, 0.25)):
        assert abs(ours.weights[np.abs(ours.means - centre) < 3].sum() - share) < 0.05


def test_category_dtype_keeps_its_categories_order_and_unused_values():
    df = pd.DataFrame(
        {
            "size": pd.Categorical(["M", "S", "L", "M", "M", "S"] * 10, categories=["S", "M", "L", "XL"], ordered=True),
            "level": pd.Categorical([3, 1, 2, 1, 1, 2] * 10, categories=[1, 2, 3]),
            "x": np.arange(60.0),
        }
    )
    enc = TabularEncoder().fit(df, infer_schema(df))
    enc = TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert enc.codec_.categories("size") == ["M", "S", "L"]  # "XL" never occurs, so it is not modelled
    with pytest.raises(InvalidConditionError, match="'XL' for column 'size'"):
        enc.category_index("size", "XL")
    back = enc.inverse_transform(enc.transform(df), rng=_rng())
    pd.testing.assert_series_equal(back["size"], df["size"])
    pd.testing.assert_series_equal(back["level"], df["level"])


def test_span_form_decodes_like_the_encoded_matrix():
    df = every_kind(300)
    enc = TabularEncoder().fit(df, infer_schema(df))
    hard = enc.transform(df)  # exact one-hots
    spans = enc.layout_.span_values(hard)  # the compact form the models generate
    assert spans.shape == (300, len(enc.layout_.spans))
    np.testing.assert_array_equal(enc.layout_.one_hot(spans), hard)
    fast = enc.inverse_transform_spans(spans, rng=_rng())
    pd.testing.assert_frame_equal(fast, enc.inverse_transform(hard, rng=_rng()))
    pd.testing.assert_series_equal(fast["colour"], df["colour"], check_dtype=False, check_categorical=False)
    with pytest.raises(InvalidDataError, match="span values"):
        enc.inverse_transform_spans(spans[:, :-1], rng=_rng())
