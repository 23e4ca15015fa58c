"""The contract every tabular model keeps, through the public front door.

One shared test set runs against every model: fit on a real table, exact row
counts, determinism by seed, save/load equality, conditions and constraints on
every output row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from engine import TabularSynthesizer
from engine.core.errors import ArtifactError, InvalidConditionError, NotFittedError, SynthError

MODELS = ["gaussian_copula", "ctgan", "tvae"]
RARE = " Holand-Netherlands"  # one row in the 32,561 of Adult
CONSTRAINTS = [
    {"type": "bounds", "column": "age", "low": 20, "high": 70},
    {"type": "inequality", "low": "capital-loss", "high": "capital-gain"},
    {"type": "fixed_combinations", "columns": ["relationship", "sex"]},
]


def _fit_kwargs(model: str) -> dict:
    # Tiny, fast runs: the contract, not the quality, is under test here.
    return {} if model == "gaussian_copula" else {"epochs": 2, "batch_size": 200, "show_progress": False}


@pytest.fixture(scope="module", params=MODELS)
def fitted(request, adult_small, ray_session):
    model = request.param
    config = {"embedding_dim": 32, "generator_dims": [64, 64], "discriminator_dims": [64, 64]} if model == "ctgan" else {}
    if model == "tvae":
        config = {"embedding_dim": 16, "compress_dims": [32], "decompress_dims": [32]}
    synth = TabularSynthesizer(model, model_config=config, constraints=CONSTRAINTS)
    synth.fit(adult_small, seed=0, **_fit_kwargs(model))
    return synth


def test_sample_has_exact_count_columns_and_dtypes(fitted, adult_small):
    for n in (1, 7, 1234):
        rows = fitted.sample(n, seed=1)
        assert len(rows) == n
        assert list(rows.columns) == list(adult_small.columns)
        assert rows.dtypes.to_dict() == adult_small.dtypes.to_dict()
    assert len(fitted.sample(0, seed=1)) == 0


def test_categories_are_real_labels(fitted, adult_small):
    rows = fitted.sample(500, seed=2)
    for col in ("workclass", "income", "sex"):
        assert set(rows[col].dropna()) <= set(adult_small[col].dropna())


def test_same_seed_same_rows_different_seed_different(fitted):
    a = fitted.sample(300, seed=5)
    b = fitted.sample(300, seed=5)
    c = fitted.sample(300, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_to_device_keeps_the_rows_of_a_seed(fitted):
    before = fitted.sample(64, seed=5)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    expected = device if fitted.model != "gaussian_copula" else "cpu"  # the copula runs on NumPy
    assert fitted.to_device(device).startswith(expected)
    after = fitted.sample(64, seed=5)
    fitted.to_device("cpu")
    pd.testing.assert_frame_equal(before, after, check_exact=device == "cpu", rtol=1e-4)


def test_constraints_hold_on_every_row(fitted, adult_small):
    rows = fitted.sample(2000, seed=3)
    assert rows["age"].between(20, 70).all()
    assert (rows["capital-loss"] <= rows["capital-gain"]).all()
    seen = set(map(tuple, adult_small[["relationship", "sex"]].drop_duplicates().to_numpy()))
    assert set(map(tuple, rows[["relationship", "sex"]].to_numpy())) <= seen


def test_category_and_range_conditions_hold(fitted):
    rows = fitted.sample(400, conditions={"income": " >50K", "age": {"between": [30, 50]}}, seed=4)
    assert len(rows) == 400
    assert (rows["income"] == " >50K").all()
    assert rows["age"].between(30, 50).all()


def test_save_load_gives_identical_samples(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = TabularSynthesizer.load(tmp_path / "m")
    pd.testing.assert_frame_equal(fitted.sample(256, seed=9), loaded.sample(256, seed=9))
    pd.testing.assert_frame_equal(
        fitted.sample(64, conditions={"sex": " Female"}, seed=9), loaded.sample(64, conditions={"sex": " Female"}, seed=9)
    )
    assert loaded.schema_ == fitted.schema_


def test_unknown_condition_values_list_what_is_valid(fitted):
    with pytest.raises(InvalidConditionError, match="Valid columns"):
        fitted.sample(5, conditions={"salary": 3})
    with pytest.raises(InvalidConditionError, match=" Female"):
        fitted.sample(5, conditions={"sex": "Robot"})
    with pytest.raises(InvalidConditionError, match="empty"):
        fitted.sample(5, conditions={"age": {"between": [50, 40]}})


def test_category_seen_once_is_generated_natively(adult, ray_session):
    """A category seen once among 8,000 Adult rows, conditioned on through the model itself."""
    once = adult[adult["native-country"] == RARE]
    assert len(once) == 1  # Adult's one row from the Netherlands
    table = pd.concat([adult[adult["native-country"] != RARE].sample(7999, random_state=0), once], ignore_index=True)
    # A small CTGAN: its conditioning, not its capacity, is under test (the default size took 17 s more).
    small_ctgan = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}
    for model, config, kwargs in (
        ("gaussian_copula", {}, {}),
        ("ctgan", small_ctgan, {"epochs": 1, "batch_size": 500, "show_progress": False}),
    ):
        synth = TabularSynthesizer(model, model_config=config).fit(table, **kwargs)
        rows = synth.sample(300, conditions={"native-country": RARE}, seed=0)
        assert len(rows) == 300 and (rows["native-country"] == RARE).all()


def test_not_fitted_and_bad_arguments():
    with pytest.raises(NotFittedError):
        TabularSynthesizer("ctgan").sample(3)
    with pytest.raises(SynthError, match="'model'"):
        TabularSynthesizer("gan9000")
    with pytest.raises(SynthError, match="num_rows"):
        TabularSynthesizer("gaussian_copula").fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]})).sample(-1)


def test_load_rejects_damaged_model(tmp_path, adult_small):
    TabularSynthesizer("gaussian_copula").fit(adult_small).save(tmp_path / "m")
    (tmp_path / "m" / "preprocessor.json").write_text("{}")
    with pytest.raises(ArtifactError):
        TabularSynthesizer.load(tmp_path / "m")


@pytest.mark.parametrize(
    "frame, words",
    [
        (pd.DataFrame(), ["empty"]),
        (pd.DataFrame({"a": pd.Series([], dtype=float)}), ["empty"]),
        (pd.DataFrame({"a": [1.0, np.inf, 2.0], "b": [1, 2, 3]}), ["'a'", "inf"]),
        (pd.DataFrame({"a": [1, "x", 2.5, "y"]}), ["'a'"]),
    ],
)
def test_bad_tables_are_explained(frame, words):
    with pytest.raises(SynthError) as info:
        TabularSynthesizer("gaussian_copula").fit(frame)
    for w in words:
        assert w in str(info.value)


def test_bad_paths_are_explained(tmp_path):
    with pytest.raises(SynthError, match="nope.csv"):
        TabularSynthesizer("gaussian_copula").fit(tmp_path / "nope.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(SynthError, match="bad.parquet"):
        TabularSynthesizer("gaussian_copula").fit(bad)


def test_all_null_column_is_reproduced_as_nulls(adult_small):
    frame = adult_small[["age", "sex"]].assign(empty=np.nan)
    rows = TabularSynthesizer("gaussian_copula").fit(frame).sample(50, seed=0)
    assert rows["empty"].isna().all() and len(rows) == 50


def test_missing_values_are_reproduced_at_their_rate(adult_small):
    rng = np.random.default_rng(0)
    frame = adult_small[["age", "hours-per-week", "workclass"]].copy()
    frame["age"] = frame["age"].astype(float).mask(rng.random(len(frame)) < 0.3)
    frame["workclass"] = frame["workclass"].mask(rng.random(len(frame)) < 0.1)
    rows = TabularSynthesizer("gaussian_copula").fit(frame).sample(20_000, seed=0)
    assert abs(rows["age"].isna().mean() - 0.3) < 0.03
    assert abs(rows["workclass"].isna().mean() - 0.1) < 0.02


def test_loading_a_table_model_does_not_import_the_image_stack():
    # Every sampling actor and CLI call imports this path: diffusers alone added seconds to each,
    # scipy.stats (only the copula's fit needs it) 0.4 s to each pool actor.
    import subprocess
    import sys

    code = (
        "import sys; import engine.core.registry, engine.tabular.synthesizer, engine.batch.sharded; "
        "from engine.core.registry import get_model_class; get_model_class('ctgan'); get_model_class('tvae'); "
        "print(sorted(m for m in ('diffusers', 'transformers', 'scipy.stats') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_registered_model_resolves_to_its_class():
    from engine.core.contract import TorchSynthModel
    from engine.core.registry import REGISTRY, UnknownModelError, get_model_class

    names = REGISTRY.model_names()
    assert {"ctgan", "tvae", "gaussian_copula", "dcgan", "wgan_gp", "ddpm"} <= set(names)
    for name in names:
        cls = get_model_class(name)
        assert cls.name == name
        if name != "gaussian_copula":
            assert issubclass(cls, TorchSynthModel)
    with pytest.raises(UnknownModelError, match="table: ctgan, tvae"):
        get_model_class("gan9000")
