"""Sharded generation over Ray Data: one Parquet file per shard, deterministic per (seed, shard), resumable."""
from engine.batch.sharded import ShardedSampleResult, ShardedSamplingError, sample_to_parquet

__all__ = ["ShardedSampleResult", "ShardedSamplingError", "sample_to_parquet"]
