"""Row generation: in-process (``rows``) and sharded over Ray Data into Parquet (``sharded``)."""
from engine.sampling.rows import SamplingRequest, generate_rows, seed_streams
from engine.sampling.sharded import ShardedSampleResult, ShardedSamplingError, sample_to_parquet

__all__ = [
    "SamplingRequest",
    "ShardedSampleResult",
    "ShardedSamplingError",
    "generate_rows",
    "sample_to_parquet",
    "seed_streams",
]
