"""Training data given as a Parquet folder or a CSV glob goes through Ray Data, never whole on the driver."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import TabularSynthesizer
from engine.core.errors import InvalidDataError
from engine.tabular.ray_data import is_large_source, read_dataset, sample_rows

TINY = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}


def test_parquet_folder_and_csv_glob_train_through_ray_data(tmp_path, adult_small, ray_session):
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(adult_small, 4)):
        part.to_parquet(folder / f"part-{i}.parquet")
        part.to_csv(tmp_path / f"part-{i}.csv", index=False)
    assert is_large_source(folder) and is_large_source(str(tmp_path / "part-*.csv"))
    # The fitting sample is bounded: max_fit_rows=500 of 2,000 rows.
    synth = TabularSynthesizer("ctgan", model_config=TINY, max_fit_rows=500)
    synth.fit(str(folder), epochs=1, batch_size=100, show_progress=False)
    assert synth.schema_.num_rows < 1000  # inferred on the sample, not on the whole table
    rows = synth.sample(100, seed=0)
    assert len(rows) == 100 and list(rows.columns) == list(adult_small.columns)
    ds = read_dataset(str(tmp_path / "part-*.csv"))
    assert ds.count() == len(adult_small)
    assert len(sample_rows(ds, max_rows=300, seed=0)) < 600


def test_copula_on_a_parquet_glob_and_uri_fits_on_the_bounded_sample(tmp_path, adult_small, ray_session):
    for i, part in enumerate(np.array_split(adult_small, 4)):
        part.to_parquet(tmp_path / f"part-{i}.parquet")
    ds = read_dataset(str(tmp_path / "part-*.parquet"))
    assert ds.count() == len(adult_small)
    synth = TabularSynthesizer("gaussian_copula", max_fit_rows=400).fit(f"file://{tmp_path}/part-*.parquet")
    assert 200 < synth.schema_.num_rows < 700
    assert len(synth.sample(50, seed=0)) == 50


def test_encoded_dataset_matches_the_in_memory_encoding(adult_small, ray_session):
    import ray.data

    from engine.tabular.schema.infer import infer_schema
    from engine.tabular.ray_data import encode_dataset
    from engine.training.loop import ENCODED_COLUMN
    from engine.tabular.transforms.tabular import TabularEncoder

    encoder = TabularEncoder(seed=0).fit(adult_small, infer_schema(adult_small))
    encoded = encode_dataset(ray.data.from_pandas(np.array_split(adult_small, 3)), encoder)
    rows = np.concatenate([b[ENCODED_COLUMN] for b in encoded.iter_batches(batch_size=500, batch_format="numpy")])
    assert rows.shape == (len(adult_small), encoder.layout_.dim) and rows.dtype == np.float32
    # Row order across blocks is not guaranteed: compare what does not depend on it.
    decoded = encoder.inverse_transform(rows, rng=np.random.default_rng(0))
    for name in adult_small.columns:
        got, want = decoded[name].sort_values(ignore_index=True), adult_small[name].sort_values(ignore_index=True)
        if want.dtype == object:
            pd.testing.assert_series_equal(got, want, check_dtype=False)
        else:
            # Mode-specific normalisation clips the odd extreme value: nearly all, not all, decode exactly.
            assert np.isclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-3, atol=1e-3).mean() > 0.99, name


def test_unreadable_large_source_is_a_clear_error(tmp_path, ray_session):
    with pytest.raises(InvalidDataError, match="No file matches"):
        read_dataset(str(tmp_path / "none-*.csv"))
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidDataError, match="both CSV and other files"):
        read_dataset(str(tmp_path / "*"))
    with pytest.raises(InvalidDataError, match=r"\*\.parquet' as Parquet: .*not a parquet file"):
        TabularSynthesizer("gaussian_copula").fit(str(tmp_path / "*.parquet"))
    # CSV is read lazily: a malformed file surfaces while sampling rows for the fit, still as a clear error.
    (tmp_path / "c.csv").write_text("x,y\n1,2\n3,4,5\n")
    with pytest.raises(InvalidDataError, match="Cannot read the training data: Failed to read CSV file: .*c.csv"):
        sample_rows(read_dataset(str(tmp_path / "c.csv")), max_rows=10, seed=0)
