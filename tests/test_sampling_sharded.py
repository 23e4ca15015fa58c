"""Sharded sampling with Ray Data: exact counts, same files for 1 or 2 actors, resumable, no duplicates."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from engine import TabularSynthesizer
from engine.batch.sharded import ShardedSamplingError, sample_to_parquet, shard_name


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, adult_small):
    # An identifier column proves ids stay unique across shards.
    data = adult_small.assign(person_id=range(100_000, 100_000 + len(adult_small)))
    path = tmp_path_factory.mktemp("model") / "copula"
    TabularSynthesizer("gaussian_copula").fit(data).save(path)
    return str(path)


def _read(out: Path) -> pd.DataFrame:
    files = sorted(out.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_exact_count_and_identical_files_for_one_and_two_actors(model_dir, tmp_path, ray_session):
    one = sample_to_parquet(model_dir, str(tmp_path / "one"), num_rows=2_345, rows_per_shard=1_000, seed=3, num_actors=1)
    two = sample_to_parquet(model_dir, str(tmp_path / "two"), num_rows=2_345, rows_per_shard=1_000, seed=3, num_actors=2)
    assert one.num_rows == two.num_rows == 2_345 and one.num_shards == 3
    a, b = _read(tmp_path / "one"), _read(tmp_path / "two")
    assert len(a) == 2_345
    pd.testing.assert_frame_equal(a, b)
    assert a["person_id"].is_unique
    other = sample_to_parquet(model_dir, str(tmp_path / "other"), num_rows=2_345, rows_per_shard=1_000, seed=4, num_actors=2)
    assert other.num_rows == 2_345 and not _read(tmp_path / "other").equals(a)


def test_a_pool_holding_every_cpu_still_runs(model_dir, tmp_path, ray_session):
    # Regression: with ray.data.range as the source, its read tasks waited forever for a CPU held by the pool.
    cpus = int(ray_session.cluster_resources()["CPU"])
    result = sample_to_parquet(model_dir, tmp_path / "all", num_rows=cpus * 100, rows_per_shard=100, num_actors=cpus)
    assert result.num_rows == cpus * 100 and len(_read(tmp_path / "all")) == cpus * 100


def test_conditions_hold_in_every_shard(model_dir, tmp_path, ray_session):
    sample_to_parquet(model_dir, str(tmp_path / "c"), num_rows=1_500, rows_per_shard=500, seed=1,
                      conditions={"sex": " Female", "age": {"between": [30, 40]}}, num_actors=2)
    rows = _read(tmp_path / "c")
    assert len(rows) == 1_500 and (rows["sex"] == " Female").all() and rows["age"].between(30, 40).all()


def test_interrupted_run_writes_only_missing_shards(model_dir, tmp_path, ray_session):
    out = tmp_path / "resume"
    first = sample_to_parquet(model_dir, str(out), num_rows=3_000, rows_per_shard=1_000, seed=7, num_actors=2)
    assert first.written_shards == [0, 1, 2]
    full = _read(out)
    # Simulate a job killed after shard 0: shard 1 lost, shard 2 half-written under its temporary name only.
    (out / shard_name(1)).unlink()
    (out / shard_name(2)).unlink()
    (out / f".{shard_name(2)}.dead.tmp").write_bytes(b"partial")
    keep_mtime = os.path.getmtime(out / shard_name(0))
    again = sample_to_parquet(model_dir, str(out), num_rows=3_000, rows_per_shard=1_000, seed=7, num_actors=2)
    assert again.written_shards == [1, 2] and again.skipped_shards == [0]
    assert os.path.getmtime(out / shard_name(0)) == keep_mtime
    pd.testing.assert_frame_equal(_read(out), full)  # same rows, none duplicated
    assert not list(out.glob(".*.tmp")) and sorted(p.name for p in out.glob("part-*")) == [shard_name(i) for i in range(3)]
    # A complete folder is left as it is.
    mtimes = [os.path.getmtime(out / shard_name(i)) for i in range(3)]
    third = sample_to_parquet(model_dir, str(out), num_rows=3_000, rows_per_shard=1_000, seed=7, num_actors=1)
    assert third.written_shards == [] and [os.path.getmtime(out / shard_name(i)) for i in range(3)] == mtimes


def test_a_different_request_into_the_same_folder_is_refused(model_dir, tmp_path, ray_session, adult_small):
    out = tmp_path / "x"
    sample_to_parquet(model_dir, str(out), num_rows=100, rows_per_shard=50, seed=1, num_actors=1)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["num_rows"] == 100 and manifest["seed"] == 1 and manifest["rows_per_shard"] == 50
    # The side file is named as readers skip it: the folder reads as one data set.
    assert len(pd.read_parquet(out)) == 100 and pq.ParquetDataset(out).read().num_rows == 100
    with pytest.raises(ShardedSamplingError, match="different request: seed differ"):
        sample_to_parquet(model_dir, str(out), num_rows=100, rows_per_shard=50, seed=2, num_actors=1)
    with pytest.raises(ShardedSamplingError, match="conditions differ"):
        sample_to_parquet(model_dir, str(out), num_rows=100, rows_per_shard=50, seed=1, conditions={"sex": " Male"})
    # The same path holding a model fitted again is a different model.
    other = tmp_path / "other-model"
    TabularSynthesizer("gaussian_copula").fit(adult_small.iloc[:500]).save(other)
    sample_to_parquet(other, tmp_path / "y", num_rows=10, rows_per_shard=5, num_actors=1)
    TabularSynthesizer("gaussian_copula").fit(adult_small.iloc[500:1000]).save(other)
    with pytest.raises(ShardedSamplingError, match="model_sha256 differ"):
        sample_to_parquet(other, tmp_path / "y", num_rows=10, rows_per_shard=5, num_actors=1)


@pytest.mark.parametrize(("option", "value"), [("num_rows", 0), ("num_rows", 2.5), ("rows_per_shard", 0), ("num_actors", 0)])
def test_bad_options_name_the_parameter(model_dir, tmp_path, option, value):
    kwargs = {"num_rows": 10, option: value}
    with pytest.raises(ShardedSamplingError, match=f"'{option}' parameter .* Got {value!r}"):
        sample_to_parquet(model_dir, str(tmp_path / "bad"), **kwargs)
    assert not (tmp_path / "bad").exists()


def test_bad_condition_is_refused_before_any_actor_starts(model_dir, tmp_path, ray_session):
    with pytest.raises(Exception, match="Valid columns"):
        sample_to_parquet(model_dir, str(tmp_path / "bad"), num_rows=10, conditions={"nope": 1})
    assert not (tmp_path / "bad").exists()


def test_ctgan_with_a_constraint_is_exact_and_identical_for_one_and_two_actors(tmp_path, adult_small, ray_session):
    path = tmp_path / "ctgan"
    synth = TabularSynthesizer(
        "ctgan",
        model_config={"embedding_dim": 16, "generator_dims": (32, 32), "discriminator_dims": (32, 32)},
        constraints=[{"type": "bounds", "column": "age", "low": 20, "high": 60}],
    )
    synth.fit(adult_small, epochs=1, batch_size=200, show_progress=False).save(path)
    one = sample_to_parquet(path, tmp_path / "one", num_rows=1_234, rows_per_shard=500, seed=5, num_actors=1)
    two = sample_to_parquet(path, tmp_path / "two", num_rows=1_234, rows_per_shard=500, seed=5, num_actors=2)
    assert one.num_rows == two.num_rows == 1_234 and one.num_shards == 3
    a, b = _read(tmp_path / "one"), _read(tmp_path / "two")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 1_234 and a["age"].between(20, 60).all()
    # An explicit precision reaches the actors: shard 0 in float32 is what the driver samples in float32.
    sample_to_parquet(path, tmp_path / "exact", num_rows=1_000, rows_per_shard=500, seed=5, num_actors=1, precision="float32")
    loaded = TabularSynthesizer.load(path)
    loaded.sampling_precision = "float32"
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "exact" / shard_name(0)), loaded.sample(500, seed=5, stream=0, row_offset=0)
    )
    assert json.loads((tmp_path / "exact" / "_manifest.json").read_text())["precision"] == "float32"


def test_an_unknown_precision_is_refused_before_any_file_is_written(model_dir, tmp_path):
    from engine.training.config import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="'auto', 'float32', 'bfloat16'. Got 'half'"):
        sample_to_parquet(model_dir, tmp_path / "p", num_rows=10, precision="half")
    assert not (tmp_path / "p").exists()


def test_a_pool_actor_uses_as_many_threads_as_the_cpus_it_reserved(ray_session):
    import ray

    from engine.batch.sharded import device_for

    @ray.remote
    def device_and_threads():
        import torch

        return device_for(False), torch.get_num_threads()

    # Ray starts its worker processes with one intra-op thread, whatever the task reserved.
    assert ray.get(device_and_threads.options(num_cpus=2).remote()) == ("cpu", 2)
    assert ray.get(device_and_threads.options(num_cpus=1).remote()) == ("cpu", 1)
