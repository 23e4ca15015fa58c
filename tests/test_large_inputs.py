"""Training data given as a Parquet folder or a CSV glob goes through Ray Data, never whole on the driver."""
from __future__ import annotations

import numpy as np
import pytest

from engine import TabularSynthesizer
from engine.errors import InvalidDataError
from engine.training.data import is_large_source, read_dataset, sample_rows

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


def test_unreadable_large_source_is_a_clear_error(tmp_path, ray_session):
    with pytest.raises(InvalidDataError, match="No file matches"):
        read_dataset(str(tmp_path / "none-*.csv"))
