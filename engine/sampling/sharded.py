"""Large-scale sampling with Ray Data: one Parquet file per shard, written by an actor pool.

``ray.data.range(num_shards)`` feeds shard indices to a pool of actors that
each load the model once (on a GPU when the actor has one). Shard ``i``
holds rows ``[i * rows_per_shard, ...)`` and is generated from ``(seed, i)``
alone, so its content is the same whatever the number of actors. Each shard
is written to a temporary name and renamed, so a killed job never leaves half
a file; a re-run skips shards already complete and writes only the missing
ones. Only a few bytes of metadata per shard come back to the driver.
"""
from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from engine.errors import SynthError

MANIFEST = "_sampling.json"


class ShardedSamplingError(SynthError, ValueError):
    """The output folder belongs to a different sampling request, or the request is invalid."""


@dataclass
class ShardedSampleResult:
    out_dir: str
    num_rows: int
    num_shards: int
    written_shards: list[int] = field(default_factory=list)
    skipped_shards: list[int] = field(default_factory=list)


def shard_name(shard: int) -> str:
    return f"part-{shard:06d}.parquet"


def _filesystem(out_dir: str) -> tuple[pafs.FileSystem, str]:
    if "://" in out_dir:
        return pafs.FileSystem.from_uri(out_dir)
    from pathlib import Path

    return pafs.LocalFileSystem(), str(Path(out_dir).expanduser().resolve())


def _rows_in(filesystem: pafs.FileSystem, path: str) -> int | None:
    info = filesystem.get_file_info(path)
    if info.type != pafs.FileType.File:
        return None
    try:
        with filesystem.open_input_file(path) as f:
            return pq.ParquetFile(f).metadata.num_rows
    except (pa.ArrowException, OSError):
        return None  # a damaged file is rewritten


class ShardWriter:
    """An actor of the pool: loads the model once, then writes the shards it is given."""

    def __init__(self, model_path: str, out_dir: str, request: Mapping[str, Any]):
        from engine.synthesizer import TabularSynthesizer

        self.synth = TabularSynthesizer.load(model_path)
        self.synth.to_device("cuda" if _has_cuda() else "cpu")
        self.filesystem, self.root = _filesystem(out_dir)
        self.request = dict(request)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        r = self.request
        shards, rows, written = [], [], []
        for shard in batch["id"].tolist():
            offset = shard * r["rows_per_shard"]
            count = min(r["rows_per_shard"], r["num_rows"] - offset)
            path = f"{self.root}/{shard_name(shard)}"
            done = _rows_in(self.filesystem, path) == count
            if not done:
                table = self.synth.sample(count, conditions=r["conditions"], seed=r["seed"], stream=shard, row_offset=offset)
                tmp = f"{self.root}/.{shard_name(shard)}.{uuid.uuid4().hex[:8]}.tmp"
                with self.filesystem.open_output_stream(tmp) as out:
                    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), out)
                self.filesystem.move(tmp, path)
            shards.append(shard)
            rows.append(count)
            written.append(not done)
        return {"shard": np.asarray(shards), "rows": np.asarray(rows), "written": np.asarray(written)}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def sample_to_parquet(
    model_path: str,
    out_dir: str,
    *,
    num_rows: int,
    conditions: Mapping[str, Any] | None = None,
    seed: int = 0,
    rows_per_shard: int = 100_000,
    num_actors: int | None = None,
    cpus_per_actor: float = 1.0,
    use_gpu: bool | None = None,
) -> ShardedSampleResult:
    """Write exactly ``num_rows`` rows of the saved model at ``model_path`` to ``out_dir`` as Parquet shards.

    The same ``seed`` gives the same files whatever ``num_actors``. Running again
    after an interruption writes only the missing shards; running again with a
    different request into the same folder is refused.
    """
    import ray

    from engine.synthesizer import TabularSynthesizer

    if not isinstance(num_rows, int) or num_rows < 1:
        raise ShardedSamplingError(f"The 'num_rows' parameter must be an integer >= 1. Got {num_rows!r} instead.")
    if not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise ShardedSamplingError(f"The 'rows_per_shard' parameter must be an integer >= 1. Got {rows_per_shard!r} instead.")
    # Validate the conditions once, on the driver, before any actor starts.
    TabularSynthesizer.load(model_path).parse_conditions(conditions)
    num_shards = math.ceil(num_rows / rows_per_shard)
    request = {
        "model": str(model_path),
        "num_rows": num_rows,
        "rows_per_shard": rows_per_shard,
        "seed": int(seed),
        "conditions": dict(conditions or {}),
    }
    filesystem, root = _filesystem(out_dir)
    filesystem.create_dir(root, recursive=True)
    manifest_path = f"{root}/{MANIFEST}"
    if filesystem.get_file_info(manifest_path).type == pafs.FileType.File:
        with filesystem.open_input_stream(manifest_path) as f:
            previous = json.loads(f.read())
        if previous != request:
            raise ShardedSamplingError(
                f"{out_dir!r} already holds shards of a different request ({previous}); "
                "use another folder, or delete it to start over."
            )
    else:
        with filesystem.open_output_stream(manifest_path) as f:
            f.write(json.dumps(request).encode())

    if use_gpu is None:
        use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    actors = num_actors or max(1, int(ray.available_resources().get("CPU", 1) // cpus_per_actor))
    actors = min(actors, num_shards)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    results = (
        ray.data.range(num_shards, override_num_blocks=num_shards)
        .map_batches(
            ShardWriter,
            fn_constructor_kwargs={"model_path": str(model_path), "out_dir": out_dir, "request": request},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor,
            num_gpus=1 if use_gpu else 0,
        )
        .take_all()
    )
    total = sum(int(r["rows"]) for r in results)
    if total != num_rows or len(results) != num_shards:
        raise ShardedSamplingError(f"Sharded sampling produced {total} rows in {len(results)} shards; expected {num_rows} in {num_shards}.")
    return ShardedSampleResult(
        out_dir=out_dir,
        num_rows=total,
        num_shards=num_shards,
        written_shards=sorted(int(r["shard"]) for r in results if r["written"]),
        skipped_shards=sorted(int(r["shard"]) for r in results if not r["written"]),
    )
